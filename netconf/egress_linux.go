package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// egressSnapshot is the kernel state the egress plan works from: links and
// the main-table routes of one family.
type egressSnapshot struct {
	byIndex map[int]netlink.Link
	routes  []netlink.Route
}

func readEgressSnapshot(h nlHandle, family int) (*egressSnapshot, error) {
	links, err := retryDump("links", h.LinkList)
	if err != nil {
		return nil, err
	}
	routes, err := retryDump("routes", func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	s := &egressSnapshot{byIndex: make(map[int]netlink.Link, len(links)), routes: routes}
	for _, l := range links {
		s.byIndex[l.Attrs().Index] = l
	}
	return s, nil
}

// PlanEgress returns the changes ApplyEgress would make, without writing.
func PlanEgress(ctx context.Context, h nlHandle, want Egress) ([]Change, error) {
	var (
		changes []Change
		errs    []error
	)
	for _, f := range egressFamilies(want) {
		if err := ctx.Err(); err != nil {
			return changes, fmt.Errorf("plan egress: %w", err)
		}
		snap, err := readEgressSnapshot(h, f.family)
		if err != nil {
			errs = append(errs, fmt.Errorf("plan egress: %w", err))
			continue
		}
		steps, err := makeEgressPlan(snap, f.src, f.family)
		errs = append(errs, err)
		for _, s := range steps {
			changes = append(changes, s.change)
		}
	}
	return changes, errors.Join(errs...)
}

// ApplyEgress makes the kernel's egress routes match want, per family: with
// a source address, the egress routes (see Egress) via the gateway and NIC of
// the lowest-metric default route that is not ours and not on a private NIC;
// with a zero address, none. It follows Apply's contract: it reads the actual
// state, adds (replace verb) before it removes, treats "already gone" as done,
// keeps going past a failure and returns the errors joined; with nothing to
// change it writes nothing. It only ever writes routes carrying RouteProtocol
// in the main table with an egress destination: a route of anyone else with
// the same destination and metric is reported, never replaced. Without a
// default route to follow, existing egress routes are left as they are.
func ApplyEgress(ctx context.Context, h nlHandle, want Egress) (Result, error) {
	var (
		res  Result
		errs []error
	)
	for _, f := range egressFamilies(want) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("apply egress: %w", err))
			break
		}
		snap, err := readEgressSnapshot(h, f.family)
		if err != nil {
			errs = append(errs, fmt.Errorf("apply egress: %w", err))
			continue
		}
		steps, err := makeEgressPlan(snap, f.src, f.family)
		errs = append(errs, err)
		for _, s := range steps {
			res.Writes++
			res.Changes = append(res.Changes, s.change)
			if err := s.do(h); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

type egressFamily struct {
	family int
	src    netip.Addr
}

func egressFamilies(want Egress) []egressFamily {
	return []egressFamily{{netlink.FAMILY_V4, want.V4}, {netlink.FAMILY_V6, want.V6}}
}

// isEgressRoute reports whether r is one of our egress routes.
func isEgressRoute(r netlink.Route) bool {
	return r.Protocol == RouteProtocol && (r.Table == 0 || r.Table == unix.RT_TABLE_MAIN) && EgressDst(routeDst(r))
}

// egressGateway finds the default route to follow: unicast, via a gateway,
// not ours, not on a private NIC, lowest metric.
func egressGateway(snap *egressSnapshot) (netlink.Route, bool) {
	var (
		best  netlink.Route
		found bool
	)
	for _, r := range snap.routes {
		if !isUnicast(r) || routeDst(r).Bits() != 0 || !routeGw(r).IsValid() || r.Protocol == RouteProtocol {
			continue
		}
		l, ok := snap.byIndex[r.LinkIndex]
		if !ok || IsPrivateMAC(l.Attrs().HardwareAddr) {
			continue
		}
		if !found || r.Priority < best.Priority {
			best, found = r, true
		}
	}
	return best, found
}

func makeEgressPlan(snap *egressSnapshot, src netip.Addr, family int) ([]step, error) {
	var (
		adds, removes []step
		wantDst       = map[netip.Prefix]bool{}
		err           error
	)
	if src.IsValid() {
		gw, ok := egressGateway(snap)
		if !ok {
			// Without a default route there is nothing to follow. Leave
			// what we have: a missing route is not "desired = nothing".
			return nil, fmt.Errorf("egress from %s: no default route via a gateway on a public NIC", src)
		}
		dev := linkName(snap.byIndex, gw.LinkIndex)
		for _, w := range egressRoutes(src, routeGw(gw)) {
			wantDst[w.Dst] = true
			if egressSatisfied(snap.routes, gw.LinkIndex, w) {
				continue
			}
			if foreign := sameKeyForeign(snap.routes, w.Dst); foreign != nil {
				err = errors.Join(err, fmt.Errorf("egress route %s dev %s: a route of protocol %d has the same destination and metric; left alone", w, dev, foreign.Protocol))
				continue
			}
			nr := toEgressRoute(gw, w, family)
			adds = append(adds, step{
				change: Change{Op: OpAdd, Kind: "route", Object: w.String(), Dev: dev, Reason: "egress from floating IP " + src.String()},
				do: func(h nlHandle) error {
					if err := h.RouteReplace(nr); err != nil {
						return fmt.Errorf("replace egress route %s dev %s: %w", w, dev, err)
					}
					return nil
				},
			})
		}
	}
	// Ours that are no longer wanted: egress ended, or a key (destination,
	// metric) that the adds above did not replace in place.
	for _, r := range snap.routes {
		if !isEgressRoute(r) || (wantDst[routeDst(r)] && r.Priority == EgressMetric) {
			continue
		}
		rr := r
		dev := linkName(snap.byIndex, r.LinkIndex)
		obj := EgressRoute{Dst: routeDst(r), Gw: routeGw(r), Src: routeSrc(r)}.String()
		why := "egress ended"
		if src.IsValid() {
			why = "egress route of hc-agent no longer wanted"
		}
		removes = append(removes, step{
			change: Change{Op: OpRemove, Kind: "route", Object: obj, Dev: dev, Reason: why},
			do: func(h nlHandle) error {
				if err := h.RouteDel(&rr); err != nil && !isGone(err) {
					return fmt.Errorf("remove egress route %s dev %s: %w", obj, dev, err)
				}
				return nil
			},
		})
	}
	return append(adds, removes...), err
}

// egressSatisfied reports whether our egress route w is in place on link.
func egressSatisfied(routes []netlink.Route, link int, w EgressRoute) bool {
	return slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return isEgressRoute(r) && r.LinkIndex == link && r.Priority == EgressMetric &&
			routeDst(r) == w.Dst && routeGw(r) == w.Gw && routeSrc(r) == w.Src
	})
}

// sameKeyForeign returns a route of someone else that a replace of an
// egress route to dst would overwrite (same table, destination and metric).
func sameKeyForeign(routes []netlink.Route, dst netip.Prefix) *netlink.Route {
	for i, r := range routes {
		if r.Protocol != RouteProtocol && r.Priority == EgressMetric && routeDst(r) == dst {
			return &routes[i]
		}
	}
	return nil
}

func toEgressRoute(gw netlink.Route, w EgressRoute, family int) *netlink.Route {
	bits := 32
	if family == netlink.FAMILY_V6 {
		bits = 128
	}
	return &netlink.Route{
		LinkIndex: gw.LinkIndex,
		Dst:       &net.IPNet{IP: w.Dst.Addr().AsSlice(), Mask: net.CIDRMask(w.Dst.Bits(), bits)},
		Gw:        w.Gw.AsSlice(),
		Src:       w.Src.AsSlice(),
		Flags:     gw.Flags & int(netlink.FLAG_ONLINK),
		Protocol:  RouteProtocol,
		Priority:  EgressMetric,
		Table:     unix.RT_TABLE_MAIN,
		Type:      unix.RTN_UNICAST,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
}

func routeSrc(r netlink.Route) netip.Addr {
	a, ok := netip.AddrFromSlice(r.Src)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func linkName(byIndex map[int]netlink.Link, ix int) string {
	if l, ok := byIndex[ix]; ok {
		return l.Attrs().Name
	}
	return fmt.Sprintf("if%d", ix)
}

// EgressController keeps the egress of the groups with egress: true. Each
// group reports the floating addresses it holds (Set); the controller picks
// the source addresses (DesiredEgress, groups in configuration order) and
// applies them. It is safe for concurrent use.
type EgressController struct {
	h     nlHandle
	log   *slog.Logger
	order []string

	mu      sync.Mutex
	held    map[string][]netip.Addr
	applied Egress
	lastErr string
}

// NewEgressController returns a controller for the named groups, in the
// order of the configuration.
func NewEgressController(h nlHandle, groups []string, log *slog.Logger) *EgressController {
	return &EgressController{h: h, log: log, order: slices.Clone(groups), held: map[string][]netip.Addr{}}
}

// Set records the floating addresses group holds now (none: nil) and
// applies the resulting egress. The group calls it right after it configured
// its addresses (the route's source must be a local address) and right
// before it removes them.
//
// A group the controller was not created with (one that a reload started
// or that turned egress on) comes after those, in the order of its first
// Set, so that a reload needs no restart for egress.
func (c *EgressController) Set(ctx context.Context, group string, held []netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.order, group) {
		c.order = append(c.order, group)
	}
	c.held[group] = slices.Clone(held)
	return c.applyLocked(ctx)
}

// Reconcile applies the egress again, for a changed default route; the
// private-network loop calls it on its tick.
func (c *EgressController) Reconcile(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applyLocked(ctx)
}

// Current returns the egress source addresses last applied.
func (c *EgressController) Current() Egress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

func (c *EgressController) applyLocked(ctx context.Context) error {
	var all []netip.Addr
	for _, g := range c.order {
		all = append(all, c.held[g]...)
	}
	want := DesiredEgress(all)
	res, err := ApplyEgress(ctx, c.h, want)
	if want != c.applied && err == nil {
		c.log.Info("egress source changed", "ipv4", addrOrNone(want.V4), "ipv6", addrOrNone(want.V6), "writes", res.Writes)
	}
	if err == nil {
		c.applied = want
		c.lastErr = ""
		return nil
	}
	if msg := err.Error(); msg != c.lastErr {
		c.lastErr = msg
		c.log.Warn("egress not applied", "err", err)
	}
	return err
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}
