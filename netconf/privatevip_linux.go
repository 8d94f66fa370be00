package netconf

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// PrivateVIPs configures the private VIPs of failover groups on this host:
// each one as a /32 on the private NIC of its network, found by MAC, as the
// platform's static configuration does for alias IPs. A group's handler
// adds a VIP when it takes the group (before it asks the API: the fast path)
// and removes it when it gives the group up.
//
// Ownership is by configuration: a VIP listed in groups[].private_ips
// belongs to its group, the private-network reconciler leaves it alone
// (Options.GroupIPs), and no record is kept, so a VIP left behind by a
// crashed run is removed by the group's first Unconfigure.
type PrivateVIPs struct {
	h nlHandle
}

// NewPrivateVIPs returns the host side of private VIPs on h.
func NewPrivateVIPs(h nlHandle) *PrivateVIPs { return &PrivateVIPs{h: h} }

// linkByMAC returns the NIC with mac, or nil when there is none (yet).
func (p *PrivateVIPs) linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := retryDump("links", p.h.LinkList)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if slices.Equal(l.Attrs().HardwareAddr, mac) {
			return l, nil
		}
	}
	return nil, nil
}

func vipAddr(ip netip.Addr) *netlink.Addr {
	return toNetlinkAddr(netip.PrefixFrom(ip.Unmap(), 32))
}

// AddVIP configures ip as /32 on the NIC with mac. An address already there
// (with any prefix length) counts as done.
func (p *PrivateVIPs) AddVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add private vip %s: %w", ip, err)
	}
	l, err := p.linkByMAC(mac)
	if err != nil {
		return fmt.Errorf("add private vip %s: %w", ip, err)
	}
	if l == nil {
		return fmt.Errorf("add private vip %s: no private nic with mac %s", ip, mac)
	}
	dev := l.Attrs().Name
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return p.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("add private vip %s dev %s: %w", ip, dev, err)
	}
	if hasIP(addrs, ip.Unmap()) {
		return nil
	}
	if err := p.h.AddrReplace(l, vipAddr(ip)); err != nil {
		return fmt.Errorf("add private vip %s dev %s: %w", ip, dev, err)
	}
	return nil
}

// RemoveVIP removes ip/32 from the NIC with mac. A VIP or NIC that is not
// there counts as done.
func (p *PrivateVIPs) RemoveVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove private vip %s: %w", ip, err)
	}
	l, err := p.linkByMAC(mac)
	if err != nil {
		return fmt.Errorf("remove private vip %s: %w", ip, err)
	}
	if l == nil {
		return nil
	}
	dev := l.Attrs().Name
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return p.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("remove private vip %s dev %s: %w", ip, dev, err)
	}
	want := netip.PrefixFrom(ip.Unmap(), 32)
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return addrPrefix(a) == want }) {
		return nil
	}
	if err := p.h.AddrDel(l, vipAddr(ip)); err != nil && !isGone(err) {
		return fmt.Errorf("remove private vip %s dev %s: %w", ip, dev, err)
	}
	return nil
}

// HasVIP reports whether ip is configured on the NIC with mac.
func (p *PrivateVIPs) HasVIP(mac net.HardwareAddr, ip netip.Addr) (bool, error) {
	l, err := p.linkByMAC(mac)
	if err != nil || l == nil {
		return false, err
	}
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return p.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return false, err
	}
	return hasIP(addrs, ip.Unmap()), nil
}
