package netconf

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// publicLink finds the public NIC: the link whose MAC starts with 96:, else
// the link of the IPv4 default route.
//
// A 96: first byte does not single out one link: the kernel gives veth,
// bridge, macvlan and tun links a random locally administered MAC, whose
// first byte is 0x96 once in 64 (Docker and Kubernetes hosts have many such
// links). So when several links match, the one carrying the IPv4 default
// route wins, then the one carrying the IPv6 default route (a Hetzner public
// NIC has both, an IPv6-only server the latter), then one whose MAC starts
// with 96:00 like the MACs Hetzner assigns (a random MAC does once in
// 16384), then the lowest interface index, since the NICs of the machine
// register before links created later.
func (a *FloatingIPApplier) publicLink() (netlink.Link, error) {
	links, err := retryDump("links", a.nl.LinkList)
	if err != nil {
		return nil, err
	}
	var cands []netlink.Link
	for _, l := range links {
		if mac := l.Attrs().HardwareAddr; len(mac) == 6 && mac[0] == publicMACPrefix {
			cands = append(cands, l)
		}
	}
	var link netlink.Link
	matched := len(cands)
	switch matched {
	case 0:
		v4, err := a.defaultRouteLinks(netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		for _, idx := range v4 {
			for _, l := range links {
				if l.Attrs().Index == idx {
					link = l
					break
				}
			}
			if link != nil {
				break
			}
		}
		if link == nil {
			return nil, errors.New("find public nic: no link with a 96: mac and no default route")
		}
	case 1:
		link = cands[0]
	default:
		// narrow keeps the candidates for which keep holds, unless none do.
		narrow := func(keep func(netlink.Link) bool) {
			if n := slices.DeleteFunc(slices.Clone(cands), func(l netlink.Link) bool { return !keep(l) }); len(n) > 0 {
				cands = n
			}
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			idxs, err := a.defaultRouteLinks(family)
			if err != nil {
				return nil, err
			}
			narrow(func(l netlink.Link) bool { return slices.Contains(idxs, l.Attrs().Index) })
		}
		narrow(func(l netlink.Link) bool { return l.Attrs().HardwareAddr[1] == 0 })
		link = slices.MinFunc(cands, func(x, y netlink.Link) int { return x.Attrs().Index - y.Attrs().Index })
	}
	if name := link.Attrs().Name; name != a.nic {
		// A state transition: logged once, not on every Set.
		a.log.Info("public nic selected", "dev", name, "mac", link.Attrs().HardwareAddr.String(), "mac_matches", matched)
		a.nic = name
	}
	return link, nil
}

// defaultRouteLinks returns the indexes of the links that carry a default
// route of family in the main table, in the kernel's order.
func (a *FloatingIPApplier) defaultRouteLinks(family int) ([]int, error) {
	routes, err := retryDump(fmt.Sprintf("routes of family %d", family), func() ([]netlink.Route, error) {
		return a.nl.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range routes {
		if r.Dst != nil && (!r.Dst.IP.IsUnspecified() || !isZeroMask(r.Dst.Mask)) {
			continue
		}
		if r.LinkIndex > 0 {
			out = append(out, r.LinkIndex)
		}
		for _, nh := range r.MultiPath {
			if nh != nil && nh.LinkIndex > 0 {
				out = append(out, nh.LinkIndex)
			}
		}
	}
	return out, nil
}

// isZeroMask reports whether m is a /0 mask.
func isZeroMask(m net.IPMask) bool {
	ones, bits := m.Size()
	return ones == 0 && bits > 0
}
