// Package ipconv converts between the net.IPNet that netlink and hcloud-go
// use and netip.Prefix, which hc-agent uses everywhere else. It is the one
// place for that conversion.
package ipconv

import (
	"net"
	"net/netip"
)

// Prefix converts n; an IPv4-mapped IPv6 address becomes IPv4. It reports
// false for nil or an invalid address.
func Prefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// IPNet converts p, with a 4-byte address for IPv4.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
