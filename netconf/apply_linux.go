package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/hc-agent/hc-agent/internal/ipconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nlHandle is the part of netlink that netconf uses. *netlink.Handle
// satisfies it; tests hand in netlink.NewHandleAt(ns) or a fake.
type nlHandle interface {
	LinkList() ([]netlink.Link, error)
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkSetUp(link netlink.Link) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	RouteGet(destination net.IP) ([]netlink.Route, error)
}

var _ nlHandle = (*netlink.Handle)(nil)

// dumpAttempts bounds the retries of a netlink dump that the kernel
// interrupted because the table changed while it was being read.
const dumpAttempts = 5

// retryDump runs dump again while it reports netlink.ErrDumpInterrupted.
func retryDump[T any](what string, dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range dumpAttempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("list %s: %w", what, err)
	}
	return v, nil
}

// snapshot is the kernel state Plan works from: one dump each of links, IPv4
// addresses and IPv4 main-table routes.
type snapshot struct {
	links   []netlink.Link
	byIndex map[int]netlink.Link
	byMAC   map[string]netlink.Link
	addrs   map[int][]netlink.Addr // by link index
	routes  []netlink.Route
}

func readSnapshot(h nlHandle) (*snapshot, error) {
	links, err := retryDump("links", h.LinkList)
	if err != nil {
		return nil, err
	}
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, err
	}
	routes, err := retryDump("routes", func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		links:   links,
		byIndex: make(map[int]netlink.Link, len(links)),
		byMAC:   make(map[string]netlink.Link, len(links)),
		addrs:   make(map[int][]netlink.Addr),
		routes:  routes,
	}
	for _, l := range links {
		a := l.Attrs()
		s.byIndex[a.Index] = l
		if len(a.HardwareAddr) == 6 {
			// Two links with one MAC (a bond and its slave, a macvlan) would be
			// ambiguous; the first in index order wins, which is the physical NIC.
			if _, dup := s.byMAC[a.HardwareAddr.String()]; !dup {
				s.byMAC[a.HardwareAddr.String()] = l
			}
		}
	}
	for _, a := range addrs {
		s.addrs[a.LinkIndex] = append(s.addrs[a.LinkIndex], a)
	}
	return s, nil
}

// step is one planned write.
type step struct {
	change Change
	do     func(h nlHandle) error
	// done updates the ownership record after do succeeded.
	done func(o *Owned)
}

// plan is what Plan computes: the writes, bookkeeping that needs no write,
// and the facts reported in Result.
type plan struct {
	steps []step
	// forget lists owned addresses that are gone already (deleted by someone
	// else, or their NIC went away) and are no longer wanted: they are
	// dropped from the record without a write.
	forget       []OwnedAddress
	missingLinks []string
}

// Plan returns the changes Apply would make, without writing anything.
func Plan(ctx context.Context, h nlHandle, desired State, owned Owned) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("plan private networks: %w", err)
	}
	if desired.Disabled {
		return nil, nil
	}
	snap, err := readSnapshot(h)
	if err != nil {
		return nil, fmt.Errorf("plan private networks: %w", err)
	}
	p := makePlan(snap, desired, owned)
	changes := make([]Change, 0, len(p.steps))
	for _, s := range p.steps {
		changes = append(changes, s.change)
	}
	return changes, nil
}

// Apply brings the kernel to the desired state. It reads the actual state,
// adds before it removes, uses replace verbs, treats "already gone" as done,
// keeps going past a failed write and returns all errors joined. owned is
// updated for each write that succeeded, so it stays true even after a
// partial failure. With nothing to change it makes no write at all.
//
// A disabled State changes nothing; the metadata black-hole check still runs.
func Apply(ctx context.Context, h nlHandle, desired State, owned *Owned) (Result, error) {
	return apply(ctx, h, desired, owned, nil)
}

// apply is Apply; steps for which skip (when not nil) reports true are left
// out, as if they were not needed.
func apply(ctx context.Context, h nlHandle, desired State, owned *Owned, skip func(Change) bool) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("apply private networks: %w", err)
	}
	snap, err := readSnapshot(h)
	if err != nil {
		return res, fmt.Errorf("apply private networks: %w", err)
	}
	var errs []error
	if !desired.Disabled {
		p := makePlan(snap, desired, *owned)
		res.MissingLinks = p.missingLinks
		for _, a := range p.forget {
			owned.drop(a.MAC, a.Prefix)
		}
		for _, s := range p.steps {
			if skip != nil && skip(s.change) {
				res.deferred = true
				continue
			}
			if err := ctx.Err(); err != nil {
				errs = append(errs, fmt.Errorf("apply private networks: %w", err))
				break
			}
			res.Writes++
			res.Changes = append(res.Changes, s.change)
			if err := s.do(h); err != nil {
				errs = append(errs, err)
				continue
			}
			if s.done != nil {
				s.done(owned)
			}
		}
		owned.normalize()
	}
	if res.Writes > 0 {
		// Name the route the kernel uses now, not the one it used before.
		if s, err := readSnapshot(h); err == nil {
			snap = s
		}
	}
	res.MetadataBlackholed, res.MetadataRoute = metadataRoute(h, snap)
	return res, errors.Join(errs...)
}

// metadataRoute asks the kernel (a FIB lookup, no packet is sent) where it
// would send traffic for the metadata service, and reports whether that is a
// private NIC. Links added since the snapshot are looked up afresh.
func metadataRoute(h nlHandle, snap *snapshot) (bool, MetadataRoute) {
	routes, err := h.RouteGet(MetadataAddr.AsSlice())
	if err != nil || len(routes) == 0 {
		// No route at all (ENETUNREACH) is not a black hole through a
		// private NIC; the metadata client will report the outage itself.
		return false, MetadataRoute{}
	}
	r := routes[0]
	mr := MetadataRoute{}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok {
		mr.Gw = gw.Unmap()
	}
	l, ok := snap.byIndex[r.LinkIndex]
	if !ok {
		mr.Dev = "if" + strconv.Itoa(r.LinkIndex)
		return false, mr
	}
	mr.Dev = l.Attrs().Name
	mr.MAC = l.Attrs().HardwareAddr.String()
	if p, ok := routeProto(snap, r.LinkIndex, mr.Gw); ok {
		mr.Proto = protoName(p)
	}
	return IsPrivateMAC(l.Attrs().HardwareAddr), mr
}

// routeDst converts a netlink destination; nil is the default route.
func routeDst(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	p, _ := ipconv.Prefix(r.Dst)
	return p
}

func routeGw(r netlink.Route) netip.Addr {
	gw, ok := netip.AddrFromSlice(r.Gw)
	if !ok {
		return netip.Addr{}
	}
	return gw.Unmap()
}

// isUnicast reports whether r is an ordinary unicast route; local, broadcast
// and multipath routes are never compared with ours.
func isUnicast(r netlink.Route) bool {
	return (r.Type == 0 || r.Type == unix.RTN_UNICAST) && len(r.MultiPath) == 0
}

// satisfied reports whether the kernel already has the desired route want on
// link. Our own routes must match exactly (metric included, since Apply put
// them there); a route from anyone else (DHCP, the image) counts as done when
// destination, gateway and device are equal, whatever its protocol or metric,
// so it is never duplicated.
func satisfied(routes []netlink.Route, link int, want Route) bool {
	for _, r := range routes {
		if r.LinkIndex != link || !isUnicast(r) || routeDst(r) != want.Dst || routeGw(r) != want.Gw {
			continue
		}
		if r.Protocol != RouteProtocol || r.Priority == want.Metric {
			return true
		}
	}
	return false
}

// foreignHas reports whether a route of someone else (not our protocol)
// with want's destination and gateway is on link, whatever its metric.
func foreignHas(routes []netlink.Route, link int, want Route) bool {
	for _, r := range routes {
		if r.LinkIndex == link && isUnicast(r) && r.Protocol != RouteProtocol && routeDst(r) == want.Dst && routeGw(r) == want.Gw {
			return true
		}
	}
	return false
}

// wanted reports whether r, a route of ours, is one of the desired routes.
func wanted(r netlink.Route, desired map[int][]Route) bool {
	for _, w := range desired[r.LinkIndex] {
		if routeDst(r) == w.Dst && routeGw(r) == w.Gw && r.Priority == w.Metric {
			return true
		}
	}
	return false
}

func toNetlinkRoute(link int, r Route) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: link,
		Dst:       ipconv.IPNet(r.Dst),
		Protocol:  RouteProtocol,
		Priority:  r.Metric,
		Table:     unix.RT_TABLE_MAIN,
		Type:      unix.RTN_UNICAST,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
		if r.OnLink {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr
}

func toNetlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: ipconv.IPNet(p)}
}

// addrLabelSuffix marks the IPv4 addresses hc-agent adds. dhclient-script
// (as hc-utils runs it) does `ip addr flush dev IF label IF` on RELEASE,
// EXPIRE, FAIL, STOP and when the leased IP changes: the label match is
// exact, so an address labelled IF:hc survives it (issue 13).
const addrLabelSuffix = ":hc"

// addrLabel is the label for an address hc-agent adds on dev. The kernel
// allows 15 characters (IFNAMSIZ less the NUL). When dev:hc does not fit,
// the address gets the kernel's default label, the device name: a label
// flush then takes it too, and the Reconciler's restore-on-deletion puts it
// back within a second instead.
func addrLabel(dev string) string {
	l := dev + addrLabelSuffix
	if len(l) > unix.IFNAMSIZ-1 {
		return ""
	}
	return l
}

// addrPrefix converts a netlink address.
func addrPrefix(a netlink.Addr) netip.Prefix {
	p, _ := ipconv.Prefix(a.IPNet)
	return p
}

// hasIP reports whether ip is on the link with any prefix length: a DHCP
// client may put 10.0.0.2/24 where hc-agent would put 10.0.0.2/32, and that
// counts as done.
func hasIP(addrs []netlink.Addr, ip netip.Addr) bool {
	for _, a := range addrs {
		if addrPrefix(a).Addr() == ip {
			return true
		}
	}
	return false
}

// isGone reports errors that mean the object to delete is not there, which
// is what a delete wants.
func isGone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// makePlan compares the snapshot with the desired state. Order: link
// settings, address adds, route adds (gateway before network so the next hop
// is reachable), then route removals and address removals: never leave a NIC
// without an address in between.
func makePlan(snap *snapshot, desired State, owned Owned) plan {
	var (
		p           plan
		adds        []step
		removes     []step
		desiredByIx = map[int][]Route{}
		wantAddr    = map[OwnedAddress]bool{}
		managedMACs = map[string]bool{}
	)
	for _, nw := range desired.Networks {
		mac := nw.MAC.String()
		managedMACs[mac] = true
		for _, a := range nw.Addrs {
			wantAddr[OwnedAddress{MAC: mac, Prefix: a.Prefix}] = true
		}
		link, ok := snap.byMAC[mac]
		if !ok {
			p.missingLinks = append(p.missingLinks, mac)
			continue
		}
		attrs := link.Attrs()
		dev, ix := attrs.Name, attrs.Index
		reason := nw.Label()
		if attrs.MTU != nw.MTU {
			mtu := nw.MTU
			adds = append(adds, step{
				change: Change{Op: OpReplace, Kind: "mtu", Object: strconv.Itoa(mtu), Dev: dev,
					Reason: fmt.Sprintf("%s: mtu was %d", reason, attrs.MTU)},
				do: func(h nlHandle) error {
					if err := h.LinkSetMTU(link, mtu); err != nil {
						return fmt.Errorf("set mtu %d on %s: %w", mtu, dev, err)
					}
					return nil
				},
			})
		}
		if attrs.Flags&net.FlagUp == 0 {
			adds = append(adds, step{
				change: Change{Op: OpReplace, Kind: "link", Object: "up", Dev: dev, Reason: reason + ": link was down"},
				do: func(h nlHandle) error {
					if err := h.LinkSetUp(link); err != nil {
						return fmt.Errorf("set link %s up: %w", dev, err)
					}
					return nil
				},
			})
		}
		for _, a := range nw.Addrs {
			if hasIP(snap.addrs[ix], a.Prefix.Addr()) {
				continue
			}
			prefix, hw := a.Prefix, attrs.HardwareAddr
			adds = append(adds, step{
				change: Change{Op: OpAdd, Kind: "address", Object: prefix.String(), Dev: dev, Reason: reason + ": " + a.Why},
				do: func(h nlHandle) error {
					a := toNetlinkAddr(prefix)
					a.Label = addrLabel(dev)
					if err := h.AddrReplace(link, a); err != nil {
						return fmt.Errorf("add address %s dev %s: %w", prefix, dev, err)
					}
					return nil
				},
				done: func(o *Owned) { o.add(hw, prefix) },
			})
		}
		for _, r := range nw.Routes {
			if foreignHas(snap.routes, ix, r) {
				// Another tool (a DHCP client, networkd after a restart)
				// has this route: it is done, and a copy of ours that
				// restore-on-deletion added meanwhile goes (below).
				continue
			}
			desiredByIx[ix] = append(desiredByIx[ix], r)
			if satisfied(snap.routes, ix, r) {
				continue
			}
			adds = append(adds, routeAdd(ix, dev, r, reason+": "+r.Why))
		}
	}

	if desired.PinMetadataRoute {
		if ix, dev, r, ok := metadataPin(snap); ok {
			desiredByIx[ix] = append(desiredByIx[ix], r)
			if !satisfied(snap.routes, ix, r) {
				adds = append(adds, routeAdd(ix, dev, r, "metadata route pinned to the public gateway"))
			}
		}
	}

	// Our routes that are no longer wanted: a detached network, a changed
	// gateway or metric, a pin that was turned off. Routes on NICs of
	// excluded networks are left alone.
	// Routes via a gateway go before link-scope routes (the reverse of the
	// add order), so a next hop is never left unreachable in between.
	stale := slices.Clone(snap.routes)
	slices.SortStableFunc(stale, func(a, b netlink.Route) int {
		if c := cmpBool(!routeGw(a).IsValid(), !routeGw(b).IsValid()); c != 0 {
			return c
		}
		return routeDst(a).Addr().Compare(routeDst(b).Addr())
	})
	for _, r := range stale {
		// Egress routes are ours too, but the egress code keeps them.
		if r.Protocol != RouteProtocol || wanted(r, desiredByIx) || EgressDst(routeDst(r)) {
			continue
		}
		l, ok := snap.byIndex[r.LinkIndex]
		if !ok || desired.ignored(l.Attrs().HardwareAddr) {
			continue
		}
		dev := l.Attrs().Name
		rr := r
		obj := Route{Dst: routeDst(r), Gw: routeGw(r), Metric: r.Priority}.String()
		why := "route of hc-agent no longer wanted"
		if foreignHas(snap.routes, r.LinkIndex, Route{Dst: routeDst(r), Gw: routeGw(r)}) {
			why = "another tool has the same route"
		}
		removes = append(removes, step{
			change: Change{Op: OpRemove, Kind: "route", Object: obj, Dev: dev, Reason: why},
			do: func(h nlHandle) error {
				if err := h.RouteDel(&rr); err != nil && !isGone(err) {
					return fmt.Errorf("remove route %s dev %s: %w", obj, dev, err)
				}
				return nil
			},
		})
	}

	// Our addresses that are no longer wanted. Addresses on NICs of excluded
	// networks stay, and stay owned, until the exclusion is lifted.
	for _, oa := range owned.Addresses {
		link, ok := snap.byMAC[oa.MAC]
		if !ok {
			// The NIC went away, and its addresses with it. Should it come
			// back, Apply adds them again and owns them again.
			p.forget = append(p.forget, oa)
			continue
		}
		if wantAddr[oa] || desired.ignored(link.Attrs().HardwareAddr) {
			continue
		}
		if desired.groupIP(oa.Prefix.Addr()) {
			p.forget = append(p.forget, oa) // the group owns it now
			continue
		}
		ix, dev := link.Attrs().Index, link.Attrs().Name
		if !slices.ContainsFunc(snap.addrs[ix], func(a netlink.Addr) bool { return addrPrefix(a) == oa.Prefix }) {
			p.forget = append(p.forget, oa) // someone else removed it already
			continue
		}
		why := "address of hc-agent no longer in metadata"
		if !managedMACs[oa.MAC] {
			why = "address of hc-agent on a detached network"
		}
		oa := oa
		removes = append(removes, step{
			change: Change{Op: OpRemove, Kind: "address", Object: oa.Prefix.String(), Dev: dev, Reason: why},
			do: func(h nlHandle) error {
				if err := h.AddrDel(link, toNetlinkAddr(oa.Prefix)); err != nil && !isGone(err) {
					return fmt.Errorf("remove address %s dev %s: %w", oa.Prefix, dev, err)
				}
				return nil
			},
			done: func(o *Owned) { o.drop(oa.MAC, oa.Prefix) },
		})
	}
	p.steps = append(adds, removes...)
	return p
}

// routeAdd plans a RouteReplace. The kernel keys IPv4 routes by (table,
// destination, TOS, metric): a foreign route with the same key but another
// next hop is replaced. That is rare (an equal next hop counts as done and is
// not touched) and, for the metadata pin, intended: it is how a bad metadata
// route pushed by DHCP with the same metric gets overridden.
func routeAdd(ix int, dev string, r Route, reason string) step {
	return step{
		change: Change{Op: OpAdd, Kind: "route", Object: r.String(), Dev: dev, Reason: reason},
		do: func(h nlHandle) error {
			if err := h.RouteReplace(toNetlinkRoute(ix, r)); err != nil {
				return fmt.Errorf("replace route %s dev %s: %w", r, dev, err)
			}
			return nil
		},
	}
}

// metadataPin finds the public default route (lowest metric, via a gateway,
// not on a private NIC) and returns the pinned metadata route through it.
func metadataPin(snap *snapshot) (int, string, Route, bool) {
	var best *netlink.Route
	for i, r := range snap.routes {
		if !isUnicast(r) || routeDst(r).Bits() != 0 || !routeGw(r).IsValid() {
			continue
		}
		l, ok := snap.byIndex[r.LinkIndex]
		if !ok || IsPrivateMAC(l.Attrs().HardwareAddr) {
			continue
		}
		if best == nil || r.Priority < best.Priority {
			best = &snap.routes[i]
		}
	}
	if best == nil {
		return 0, "", Route{}, false
	}
	return best.LinkIndex, snap.byIndex[best.LinkIndex].Attrs().Name, Route{
		Dst:    netip.PrefixFrom(MetadataAddr, 32),
		Gw:     routeGw(*best),
		Why:    "metadata pin",
		OnLink: best.Flags&int(netlink.FLAG_ONLINK) != 0,
	}, true
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
