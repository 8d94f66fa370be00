package netconf

import (
	"net/netip"
	"slices"
	"strconv"
)

// Egress makes outgoing internet traffic leave from a floating IP while this
// server holds it (groups[].egress), for peers that allow-list one address.
//
// Mechanism: routes that split the internet into more specific prefixes than
// the image's default route (0.0.0.0/1 and 128.0.0.0/1, the OpenVPN "def1"
// trick), via the same gateway and NIC as that default route, with the
// floating IP as preferred source (RTA_PREFSRC) and hc-agent's protocol.
// Longest prefix wins at any metric, so they shadow the image's default route
// without touching it; every more specific route (private networks, the
// gateway's on-link route, a pinned metadata route) still wins over them.
//
// The alternatives were worse: an own default route with a lower metric than
// the image's is impossible when the image's has metric 0 (ifupdown,
// cloud-init's Debian images), and a route of equal key would replace it; a
// policy rule needs a routing table number of its own that may collide with
// the operator's, and reorders lookups for everything else on the host.
//
// Link-local destinations (169.254.0.0/16, the metadata service among them)
// are left out of the IPv4 prefixes: they are not the internet, and the
// metadata service must keep seeing the server's own address.
//
// Changing the preferred source only affects sockets that have not chosen a
// source yet: connections already open keep the address they were opened
// from and keep working. When the floating IP goes (Apply with a zero
// address, or the address is removed, which makes the kernel drop IPv4
// routes that use it as source) new connections leave from the primary
// address again.
type Egress struct {
	// V4 is the floating IPv4 to send IPv4 traffic from; zero for none.
	V4 netip.Addr
	// V6 is the configured address of a floating IPv6 /64 to send IPv6
	// traffic from; zero for none.
	V6 netip.Addr
}

// EgressMetric is the metric of the egress routes. It is explicit because
// the kernel turns an IPv6 metric 0 into 1024. A route with the same prefix
// and a lower metric (metric 0, a VPN's own def1 routes) wins over ours;
// hc-agent never replaces it.
const EgressMetric = 1

// linkLocal4 is what the IPv4 egress routes leave out.
var linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")

// egressDsts4 and egressDsts6 are the destinations of the egress routes.
var (
	egressDsts4 = complement(netip.PrefixFrom(netip.IPv4Unspecified(), 0), linkLocal4)
	egressDsts6 = []netip.Prefix{netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1")}
)

// complement returns the prefixes that cover all of outer except inner, the
// fewest possible (one per bit of inner below outer), in address order.
// inner must lie within outer.
func complement(outer, inner netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	a := inner.Addr()
	for bits := outer.Bits() + 1; bits <= inner.Bits(); bits++ {
		// The sibling of inner's ancestor at this length: same first
		// bits-1 bits, the bit at position bits-1 flipped.
		p := netip.PrefixFrom(flipBit(a, bits-1), bits).Masked()
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

// flipBit flips bit i (0 is the most significant) of a.
func flipBit(a netip.Addr, i int) netip.Addr {
	b := a.AsSlice()
	b[i/8] ^= 0x80 >> (i % 8)
	r, _ := netip.AddrFromSlice(b)
	return r
}

// EgressDst reports whether p is the destination of an egress route. The
// private-network reconciler leaves routes of ours with such a destination
// to the egress code.
func EgressDst(p netip.Prefix) bool {
	return slices.Contains(egressDsts4, p) || slices.Contains(egressDsts6, p)
}

// DesiredEgress picks the egress source addresses from held: the floating
// addresses that this server holds now for groups with egress, in the order
// of the groups in the configuration (and of the floating IPs within a
// group). The first IPv4 and the first IPv6 win, so that two such groups held
// at once give a stable answer. It is pure.
func DesiredEgress(held []netip.Addr) Egress {
	var e Egress
	for _, a := range held {
		a = a.Unmap()
		switch {
		case a.Is4() && !e.V4.IsValid():
			e.V4 = a
		case a.Is6() && !e.V6.IsValid() && a.Zone() == "":
			e.V6 = a
		}
	}
	return e
}

// EgressRoute is one desired egress route, rendered in change reasons.
type EgressRoute struct {
	Dst netip.Prefix
	Gw  netip.Addr
	Src netip.Addr
}

// String renders the route like ip-route does, without the device.
func (r EgressRoute) String() string {
	return r.Dst.String() + " via " + r.Gw.String() + " src " + r.Src.String() + " metric " + strconv.Itoa(EgressMetric)
}

// egressRoutes returns the routes for sending traffic of src's family from
// src via gw.
func egressRoutes(src, gw netip.Addr) []EgressRoute {
	dsts := egressDsts4
	if src.Is6() {
		dsts = egressDsts6
	}
	out := make([]EgressRoute, 0, len(dsts))
	for _, d := range dsts {
		out = append(out, EgressRoute{Dst: d, Gw: gw, Src: src})
	}
	return out
}
