package netconf

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"

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
// crashed run is removed by the group's first Unconfigure. In memory it
// keeps the VIPs added since, so that Restore can put back one that
// someone else deleted.
type PrivateVIPs struct {
	h nlHandle

	// mu serialises the writes, so that a Restore never re-adds a VIP that
	// a RemoveVIP is taking away.
	mu     sync.Mutex
	wanted map[netip.Addr]net.HardwareAddr // added and not removed since
}

// NewPrivateVIPs returns the host side of private VIPs on h.
func NewPrivateVIPs(h nlHandle) *PrivateVIPs {
	return &PrivateVIPs{h: h, wanted: map[netip.Addr]net.HardwareAddr{}}
}

// linkByMAC returns the NIC with mac, or nil when there is none (yet).
func (p *PrivateVIPs) linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := retryDump("links", p.h.LinkList)
	if err != nil {
		return nil, err
	}
	return findMAC(links, mac), nil
}

// findMAC returns the link of links with mac, or nil.
func findMAC(links []netlink.Link, mac net.HardwareAddr) netlink.Link {
	for _, l := range links {
		if slices.Equal(l.Attrs().HardwareAddr, mac) {
			return l
		}
	}
	return nil
}

// vipAddr is ip/32 as hc-agent adds it on dev: labelled, so that a DHCP
// client's label flush of the NIC leaves it (see addrLabel).
func vipAddr(ip netip.Addr, dev string) *netlink.Addr {
	a := toNetlinkAddr(netip.PrefixFrom(ip.Unmap(), 32))
	a.Label = addrLabel(dev)
	return a
}

// AddVIP configures ip as /32 on the NIC with mac. An address already there
// (with any prefix length) counts as done.
func (p *PrivateVIPs) AddVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add private vip %s: %w", ip, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted[ip.Unmap()] = slices.Clone(mac)
	l, err := p.linkByMAC(mac)
	if err != nil {
		return fmt.Errorf("add private vip %s: %w", ip, err)
	}
	if l == nil {
		return fmt.Errorf("add private vip %s: no private nic with mac %s", ip, mac)
	}
	_, err = p.add(l, ip)
	return err
}

// add configures ip/32 on NIC l unless it is there, and reports whether it
// wrote.
func (p *PrivateVIPs) add(l netlink.Link, ip netip.Addr) (bool, error) {
	dev := l.Attrs().Name
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return p.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return false, fmt.Errorf("add private vip %s dev %s: %w", ip, dev, err)
	}
	if hasIP(addrs, ip.Unmap()) {
		return false, nil
	}
	if err := p.h.AddrReplace(l, vipAddr(ip, dev)); err != nil {
		return false, fmt.Errorf("add private vip %s dev %s: %w", ip, dev, err)
	}
	return true, nil
}

// Restore puts back every VIP added since start and not removed that
// someone else deleted, leaving out those skip refuses, and returns the adds
// it made. A VIP whose NIC is gone is left for the group to notice.
func (p *PrivateVIPs) Restore(ctx context.Context, skip func(Change) bool) ([]Change, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.wanted) == 0 {
		return nil, nil
	}
	links, err := retryDump("links", p.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("restore private vips: %w", err)
	}
	var changes []Change
	var errs []error
	for _, ip := range slices.SortedFunc(maps.Keys(p.wanted), netip.Addr.Compare) {
		if err := ctx.Err(); err != nil {
			return changes, err
		}
		l := findMAC(links, p.wanted[ip])
		if l == nil {
			continue
		}
		c := Change{Op: OpAdd, Kind: "address", Object: netip.PrefixFrom(ip, 32).String(), Dev: l.Attrs().Name,
			Reason: "private vip, deleted by someone else"}
		if skip != nil && skip(c) {
			continue
		}
		wrote, err := p.add(l, ip)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wrote {
			changes = append(changes, c)
		}
	}
	return changes, errors.Join(errs...)
}

// RemoveVIP removes ip/32 from the NIC with mac. A VIP or NIC that is not
// there counts as done.
func (p *PrivateVIPs) RemoveVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove private vip %s: %w", ip, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.wanted, ip.Unmap())
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
	if err := p.h.AddrDel(l, vipAddr(ip, dev)); err != nil && !isGone(err) {
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
