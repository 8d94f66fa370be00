package netconf

import (
	"context"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Restore on deletion (issue 13): an address or route of ours that someone
// else removes (dhclient -r, a lease expiry, `ip addr flush`, a networkd
// restart) is put back from the last known good metadata as soon as the
// kernel reports the deletion, without waiting for the poll and without
// reading metadata (which may be what is broken). Against another actor that
// keeps deleting the same item, restoreLimit restores per restoreWindow are
// allowed per item; after that hc-agent leaves the item alone for
// restoreBackoff, logs it once and counts it, instead of fighting.
//
// A restore waits until the deletions have been quiet for restoreSettle
// (at most restoreSettleMax after the first): `ip addr flush` deletes in
// rounds until a dump finds nothing left, so an address put back between
// two rounds is taken again, and each such round would count against the
// item's budget until hc-agent backs off from an operator's one flush.
const (
	restoreLimit     = 5
	restoreWindow    = time.Minute
	restoreBackoff   = time.Minute
	restoreSettle    = 50 * time.Millisecond
	restoreSettleMax = 500 * time.Millisecond
)

// settle returns once no request has arrived on req for restoreSettle, at
// most restoreSettleMax after it was called, or when ctx is done; requests
// that arrive meanwhile are absorbed, the restore that follows serves them.
func settle(ctx context.Context, req <-chan struct{}) {
	quiet := time.NewTimer(restoreSettle)
	defer quiet.Stop()
	limit := time.NewTimer(restoreSettleMax)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-limit.C:
			return
		case <-quiet.C:
			return
		case <-req:
			quiet.Reset(restoreSettle)
		}
	}
}

// AddrSubscribeFunc subscribes to address updates the way
// netlink.AddrSubscribeWithOptions does.
type AddrSubscribeFunc func(ch chan<- netlink.AddrUpdate, done <-chan struct{}) error

// RouteSubscribeFunc subscribes to route updates the way
// netlink.RouteSubscribeWithOptions does.
type RouteSubscribeFunc func(ch chan<- netlink.RouteUpdate, done <-chan struct{}) error

// WithAddrSubscribe replaces the address event source (tests inject events).
func WithAddrSubscribe(f AddrSubscribeFunc) ReconcilerOption {
	return func(r *Reconciler) { r.subscribeAddr = f }
}

// WithRouteSubscribe replaces the route event source (tests inject events).
func WithRouteSubscribe(f RouteSubscribeFunc) ReconcilerOption {
	return func(r *Reconciler) { r.subscribeRoute = f }
}

// WithOnRestore registers a callback for every restore after an external
// deletion and for every back-off: kind is "address" or "route", backedOff
// tells a back-off from a restore. The daemon counts them in metrics.
func WithOnRestore(f func(kind string, backedOff bool)) ReconcilerOption {
	return func(r *Reconciler) { r.onRestore = f }
}

// fightGuard bounds the restores per item. Not safe for concurrent use: the
// Reconciler calls it with mu held.
type fightGuard struct {
	restores map[string][]time.Time
	until    map[string]time.Time
}

func newFightGuard() *fightGuard {
	return &fightGuard{restores: map[string][]time.Time{}, until: map[string]time.Time{}}
}

// changeKey identifies the item a change writes, whatever the operation.
func changeKey(c Change) string {
	return c.Kind + " " + c.Object + " dev " + c.Dev
}

// blocked reports whether hc-agent backs off from the item of c at now.
func (g *fightGuard) blocked(c Change, now time.Time) bool {
	k := changeKey(c)
	u, ok := g.until[k]
	if !ok {
		return false
	}
	if now.Before(u) {
		return true
	}
	delete(g.until, k)
	return false
}

// note records a restore of c's item at now and reports whether that
// exhausted the budget, so the item is now backed off.
func (g *fightGuard) note(c Change, now time.Time) bool {
	k := changeKey(c)
	ts := g.restores[k]
	for len(ts) > 0 && now.Sub(ts[0]) >= restoreWindow {
		ts = ts[1:]
	}
	ts = append(ts, now)
	if len(ts) < restoreLimit {
		g.restores[k] = ts
		return false
	}
	delete(g.restores, k)
	g.until[k] = now.Add(restoreBackoff)
	return true
}

// restored records the restore of c's item at now, reports it to
// onRestore (when set) under kind, and, when that used up the item's
// budget, logs the back-off once and reports it too.
func (g *fightGuard) restored(c Change, kind string, now time.Time, log *slog.Logger, onRestore func(kind string, backedOff bool)) {
	backedOff := g.note(c, now)
	if onRestore != nil {
		onRestore(kind, false)
	}
	if !backedOff {
		return
	}
	log.Warn("another actor keeps deleting it: not restoring for a while",
		"kind", kind, "object", c.Object, "dev", c.Dev,
		"restores", restoreLimit, "within", restoreWindow, "backoff", restoreBackoff)
	if onRestore != nil {
		onRestore(kind, true)
	}
}

// Request a restore soon; never blocks.
func (r *Reconciler) requestRestore() {
	select {
	case r.restoreReq <- struct{}{}:
	default:
	}
}

// addrEvent asks for a restore on every change of an IPv4 address: one
// removed from a private NIC (by a flush, a DHCP release, the kernel
// expiring a lease-bound address), or anything else, which the restore finds
// in order.
func (r *Reconciler) addrEvent(u netlink.AddrUpdate) {
	if u.LinkAddress.IP.To4() == nil {
		return // private networks are IPv4
	}
	r.kernelChanged()
}

// routeEvent asks for a restore on every change of an IPv4 main-table
// route: a route of ours or on a private NIC went away, someone else
// installed a route to the metadata service (a DHCP client's black hole at
// renewal, or a replace that took the pin's place), or anything else, which
// the restore finds in order.
func (r *Reconciler) routeEvent(u netlink.RouteUpdate) {
	if (u.Table != 0 && u.Table != unix.RT_TABLE_MAIN) || (u.Family != 0 && u.Family != netlink.FAMILY_V4) {
		return // private networks are IPv4 and in the main table
	}
	r.kernelChanged()
}

// watchEvents forwards the updates of one subscription to handle until ctx
// is done, subscribing again (and calling lost, since events may have been
// lost: callers restore) when the subscription breaks. It returns when ctx is done
// and the subscription's channel is closed.
func watchEvents[T any](ctx context.Context, log *slog.Logger, what string, subscribe func(chan<- T, <-chan struct{}) error, ch chan T, handle func(T), lost func()) {
	for {
		for u := range ch {
			if ctx.Err() == nil {
				handle(u)
			}
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("event subscription ended, subscribing again", "events", what)
		for {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			ch = make(chan T, 64)
			err := subscribe(ch, ctx.Done())
			if err == nil {
				break
			}
			log.Warn("subscribe to events", "events", what, "err", err)
		}
		lost()
	}
}

// restore re-applies the last known good desired state, without reading
// metadata, after an event said something of ours may be gone. Items another
// actor keeps deleting are skipped while backed off.
func (r *Reconciler) restore(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.haveGood {
		// Nothing is known of the networks yet; only the pin can be kept.
		mc, err := CheckMetadataRoute(ctx, r.h, r.pin(), false)
		if err == nil {
			r.noteBlackhole(mc.Blackholed, mc.Route)
		}
		return
	}
	desired := Desired(r.lastGood, r.opts)
	before := r.owned.Clone()
	r.dirty.Store(false) // before apply reads the kernel: see dirty
	res, err := apply(ctx, r.h, desired, &r.owned, func(c Change) bool { return r.fight.blocked(c, now) })
	for _, c := range res.Changes {
		if c.Op == OpRemove || (c.Kind != "address" && c.Kind != "route") {
			continue
		}
		r.fight.restored(c, c.Kind, now, r.log, r.onRestore)
	}
	r.noteApplied(res, r.finish(desired, before, res, err))
}
