package netconf

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// CheckMetadataRoute asks the kernel where it would send traffic for the
// metadata service and, with pin, pins the metadata route to the public NIC's
// default gateway. It needs nothing but netlink: no metadata, no ownership
// record, and it never touches any other route. The daemon runs it before its
// first metadata read and after every failed one, and `hc-agent apply` before
// it reads metadata, because the private DHCP server's black-hole route is
// usually there before hc-agent starts (issue 13): reading metadata first
// would only time out.
//
// The pin is a /32 route with metric 0 and hc-agent's protocol via the
// gateway of the public default route found on the host (lowest metric, not
// on a private NIC). A /32 beats the default route, and at metric 0 it beats
// every other /32 to the metadata service: networkd's (metric 1024) and
// dhcpcd's (1000+ifindex) live next to it and lose; dhclient's (metric 0)
// is replaced, and dhclient's later `ip route add` of it fails with EEXIST.
// Should another actor replace the pin itself, the route events of the
// Reconciler put it back (bounded, see restoreGuard).
//
// With dryRun nothing is written: the result says what would be.
func CheckMetadataRoute(ctx context.Context, h nlHandle, pin, dryRun bool) (MetadataCheck, error) {
	var mc MetadataCheck
	if err := ctx.Err(); err != nil {
		return mc, fmt.Errorf("check metadata route: %w", err)
	}
	snap, err := readSnapshot(h)
	if err != nil {
		return mc, fmt.Errorf("check metadata route: %w", err)
	}
	if pin {
		if ix, dev, r, ok := metadataPin(snap); ok && !satisfied(snap.routes, ix, r) {
			s := routeAdd(ix, dev, r, "metadata route pinned to the public gateway")
			mc.Changes = append(mc.Changes, s.change)
			if !dryRun {
				if err := s.do(h); err != nil {
					return mc, fmt.Errorf("check metadata route: %w", err)
				}
				if snap, err = readSnapshot(h); err != nil {
					return mc, fmt.Errorf("check metadata route: %w", err)
				}
			}
		}
	}
	mc.Blackholed, mc.Route = metadataRoute(h, snap)
	if dryRun && len(mc.Changes) > 0 {
		// The pin is not there yet, but it will win once it is.
		mc.Blackholed = false
	}
	return mc, nil
}

// routeProto finds the route of the main table that the kernel's lookup for
// the metadata service chose (longest prefix on dev via gw, lowest metric)
// and returns its protocol, for the hint an operator reads.
func routeProto(snap *snapshot, link int, gw netip.Addr) (netlink.RouteProtocol, bool) {
	var best *netlink.Route
	for i, r := range snap.routes {
		if r.LinkIndex != link || !isUnicast(r) || routeGw(r) != gw || !routeDst(r).Contains(MetadataAddr) {
			continue
		}
		if best == nil || routeDst(r).Bits() > routeDst(*best).Bits() ||
			(routeDst(r).Bits() == routeDst(*best).Bits() && r.Priority < best.Priority) {
			best = &snap.routes[i]
		}
	}
	if best == nil {
		return 0, false
	}
	return best.Protocol, true
}

// protoName names a route protocol as ip-route prints it.
func protoName(p netlink.RouteProtocol) string {
	if p == RouteProtocol {
		return "hc-agent"
	}
	return p.String()
}
