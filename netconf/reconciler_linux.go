package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Hotplug refresh: metadata can lag a hot-added NIC by seconds, so after a
// new private NIC shows up whose MAC metadata does not list yet, metadata is
// read again with a short backoff until it does or hotplugWindow passes. The
// backoff is capped at 500ms so that a NIC is configured well within a second
// of metadata showing it; a local metadata read every half second for at most
// 30 s is cheap.
const (
	hotplugFirstRetry = 200 * time.Millisecond
	hotplugMaxRetry   = 500 * time.Millisecond
	hotplugWindow     = 30 * time.Second
)

// SubscribeFunc subscribes to link updates the way
// netlink.LinkSubscribeWithOptions does: updates go to ch until done is
// closed.
type SubscribeFunc func(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error

// ReconcilerOption configures a Reconciler.
type ReconcilerOption func(*Reconciler)

// WithNetns makes the Reconciler hear link, address and route events in ns
// (the namespace its netlink handle works in), on an event source of its
// own. Without it, WithEvents and WithSubscribe, the current namespace is
// used.
func WithNetns(ns netns.NsHandle) ReconcilerOption {
	return func(r *Reconciler) { r.useEvents(NewKernelEvents(&ns)) }
}

// WithEvents makes the Reconciler hear link, address and route events from
// k, which the AddressRestorer of the same namespace shares: one socket and
// one reading goroutine for both.
func WithEvents(k *KernelEvents) ReconcilerOption {
	return func(r *Reconciler) { r.useEvents(k) }
}

// useEvents sets the link, address and route event sources to k.
func (r *Reconciler) useEvents(k *KernelEvents) {
	r.subscribe = k.Links(r.subscribeError)
	r.subscribeAddr = k.Addrs(r.subscribeError)
	r.subscribeRoute = k.Routes(r.subscribeError)
}

// WithSubscribe replaces the link event source (tests inject events). Unless
// WithNetns or WithAddrSubscribe/WithRouteSubscribe set them, there are then
// no address and route events.
func WithSubscribe(f SubscribeFunc) ReconcilerOption {
	return func(r *Reconciler) { r.subscribe = f }
}

// WithOnReconcile registers a callback run after every reconcile, from the
// Run goroutine: the daemon uses it for metrics and the systemd READY and
// watchdog notifications.
func WithOnReconcile(f func(Result, error)) ReconcilerOption {
	return func(r *Reconciler) { r.onReconcile = f }
}

// WithOwned starts from an ownership record loaded earlier.
func WithOwned(o Owned) ReconcilerOption {
	return func(r *Reconciler) { r.owned = o.Clone() }
}

// WithOwnedFile loads the ownership record from path when Run starts and
// saves it there whenever it changes.
func WithOwnedFile(path string) ReconcilerOption {
	return func(r *Reconciler) { r.ownedPath = path }
}

// Reconciler keeps the private networks configured: it reconciles (reads
// metadata and applies it) at start, on every jittered poll, on link events
// (hotplug) and on Trigger, and it restores (applies the last metadata
// again) once the kernel's events have settled after a change of a known
// link, an IPv4 address or an IPv4 main-table route, which puts back at once
// what someone else deleted or changed.
//
// A poll reads metadata every time, but it reads the kernel only when
// something may have changed since the last reconcile or restore that left
// the kernel as desired: metadata, the options, or the kernel, which the
// Reconciler hears of through its netlink subscriptions (a lost
// subscription counts as a change). An idle agent's poll is then one
// metadata request; the netlink dumps and the plan run when there is
// something to look at. Without address and route subscriptions (tests that
// inject only link events) every reconcile reads the kernel.
type Reconciler struct {
	opts           Options
	src            Source
	h              nlHandle
	log            *slog.Logger
	subscribe      SubscribeFunc
	subscribeAddr  AddrSubscribeFunc
	subscribeRoute RouteSubscribeFunc
	onReconcile    func(Result, error)
	onRestore      func(kind string, backedOff bool)
	ownedPath      string
	trigger        chan struct{}
	restoreReq     chan struct{}
	linkEvents     chan linkEvent
	// runCtx is Run's context: subscription errors once it is done are
	// the sockets closing, not trouble.
	runCtx atomic.Pointer[context.Context]
	// dirty says that what apply manages may differ from what the last
	// apply read and wrote: an event, a lost subscription or new options
	// set it, and a reconcile or restore clears it before it reads the
	// kernel, so that an event during the read sets it again.
	dirty atomic.Bool

	mu         sync.Mutex
	lastGood   []metadata.PrivateNetwork
	haveGood   bool
	owned      Owned
	blackholed bool
	lastErr    string
	lastNotes  string
	fight      *fightGuard
	// pending holds the MACs of hot-added private NICs that metadata does
	// not list yet, with when to give up on them.
	pending map[string]time.Time
	// converged says that the last apply (reconcile or restore) left the
	// kernel as desired for lastGood, which every apply applies (no error,
	// no write deferred by the fight guard), with the Result last.
	converged bool
	last      Result
}

type linkEvent struct {
	mac   string
	added bool
}

// New returns a Reconciler that reads metadata from src and configures the
// host through h (a *netlink.Handle). logger must not be nil.
func New(opts Options, src Source, h nlHandle, logger *slog.Logger, ropts ...ReconcilerOption) *Reconciler {
	r := &Reconciler{
		opts:       opts,
		src:        src,
		h:          h,
		log:        logger,
		trigger:    make(chan struct{}, 1),
		restoreReq: make(chan struct{}, 1),
		linkEvents: make(chan linkEvent, 64),
		pending:    map[string]time.Time{},
		fight:      newFightGuard(),
	}
	r.owned.normalize()
	for _, o := range ropts {
		o(r)
	}
	if r.subscribe == nil {
		sa, sr := r.subscribeAddr, r.subscribeRoute
		r.useEvents(NewKernelEvents(nil))
		if sa != nil {
			r.subscribeAddr = sa
		}
		if sr != nil {
			r.subscribeRoute = sr
		}
	}
	return r
}

// subscribeError hears of the event subscriptions' errors: a message that
// did not parse or a failed socket, after which events may be missing. Once
// Run has stopped, nothing is news (issue 15).
func (r *Reconciler) subscribeError(err error) {
	if ctx := r.runCtx.Load(); ctx != nil && (*ctx).Err() != nil {
		return
	}
	r.log.Warn("netlink event subscription error", "err", err)
	r.kernelChanged()
	r.Trigger()
}

// kernelChanged notes that the kernel may no longer be as the last apply
// left it: a restore reads it once the events have settled, and so does the
// next reconcile.
func (r *Reconciler) kernelChanged() {
	r.dirty.Store(true)
	r.requestRestore()
}

// watchesKernel reports whether the Reconciler hears of every change to
// what it manages (links, addresses, routes).
func (r *Reconciler) watchesKernel() bool {
	return r.subscribeAddr != nil && r.subscribeRoute != nil
}

// pin reports whether the metadata route is to be pinned.
func (r *Reconciler) pin() bool {
	return r.opts.PinMetadataRoute && !r.opts.Disabled
}

// Trigger asks for a reconcile soon. It never blocks.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// LastKnownGood returns the private networks of the last successful metadata
// read, and whether there was one.
func (r *Reconciler) LastKnownGood() ([]metadata.PrivateNetwork, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lastGood), r.haveGood
}

// Owned returns a copy of the ownership record.
func (r *Reconciler) Owned() Owned {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owned.Clone()
}

// Run reconciles until ctx is done, then returns nil. It returns an error
// only when it cannot start (ownership record unreadable, link events
// unavailable).
func (r *Reconciler) Run(ctx context.Context) error {
	if r.ownedPath != "" {
		o, err := LoadOwned(r.ownedPath)
		if err != nil {
			return fmt.Errorf("start private network reconciler: %w", err)
		}
		r.mu.Lock()
		r.owned = o
		r.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.runCtx.Store(&ctx)

	updates := make(chan netlink.LinkUpdate, 64)
	if err := r.subscribe(updates, ctx.Done()); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	// The links that are there now are no news: only a NIC that appears
	// later is logged and waited for (issue 15).
	known := map[int]string{}
	if links, err := retryDump("links", r.h.LinkList); err == nil {
		for _, l := range links {
			known[l.Attrs().Index] = l.Attrs().HardwareAddr.String()
		}
	}
	// The watchers exit once ctx is done and their subscription has closed
	// its channel; Run waits for them so that no goroutine outlives Run.
	var watchers sync.WaitGroup
	defer func() {
		cancel()
		watchers.Wait()
	}()
	watchers.Go(func() { r.watchLinks(ctx, updates, known) })
	if r.subscribeAddr != nil {
		ch := make(chan netlink.AddrUpdate, 64)
		if err := r.subscribeAddr(ch, ctx.Done()); err != nil {
			return fmt.Errorf("subscribe to address events: %w", err)
		}
		watchers.Go(func() { watchEvents(ctx, r.log, "address", r.subscribeAddr, ch, r.addrEvent, r.kernelChanged) })
	}
	if r.subscribeRoute != nil {
		ch := make(chan netlink.RouteUpdate, 64)
		if err := r.subscribeRoute(ch, ctx.Done()); err != nil {
			return fmt.Errorf("subscribe to route events: %w", err)
		}
		watchers.Go(func() { watchEvents(ctx, r.log, "route", r.subscribeRoute, ch, r.routeEvent, r.kernelChanged) })
	}

	poll := time.NewTimer(jitter(r.opts.pollInterval()))
	defer poll.Stop()
	var (
		retry   *time.Timer
		retryC  <-chan time.Time
		backoff = hotplugFirstRetry
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		r.reconcile(ctx)
		if r.hasPending() {
			if retry == nil {
				retry = time.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			retryC = retry.C
			backoff = min(backoff*2, hotplugMaxRetry)
		} else {
			retryC = nil
			backoff = hotplugFirstRetry
		}
		ok, linkEvent := r.wait(ctx, poll, retryC)
		if !ok {
			return nil
		}
		if linkEvent {
			backoff = hotplugFirstRetry
		}
	}
}

// wait blocks until the next reconcile is due and reports false when ctx is
// done; linkEvent says a link event woke it. Restore requests are served
// while it waits: they re-apply the last known good state and do not count
// as a reconcile.
func (r *Reconciler) wait(ctx context.Context, poll *time.Timer, retryC <-chan time.Time) (ok, linkEvent bool) {
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-poll.C:
			poll.Reset(jitter(r.opts.pollInterval()))
		case <-r.trigger:
		case <-r.restoreReq:
			settle(ctx, r.restoreReq)
			r.restore(ctx)
			continue
		case <-retryC:
		case ev := <-r.linkEvents:
			r.noteLink(ev)
			return true, true
		}
		return true, false
	}
}

// jitter spreads d by ±10% so a fleet started from one image does not poll
// in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// watchLinks turns kernel link updates into link events: a new private NIC
// (MAC 86:00:00…) or a link that went away. Changes of an existing link
// (including the MTU and up that Apply sets) are not events, but they ask for
// a restore, which puts back an MTU or an up someone else changed. When the
// subscription breaks (the kernel drops messages with ENOBUFS when a burst
// overflows the socket), it subscribes again and triggers a full reconcile,
// since events may have been missed.
//
// It returns when ctx is done and the subscription's channel is closed: it
// keeps draining until then so that netlink's receive goroutine, which may be
// blocked sending, can exit too.
func (r *Reconciler) watchLinks(ctx context.Context, updates chan netlink.LinkUpdate, known map[int]string) {
	for {
		r.consumeLinks(ctx, updates, known)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("link event subscription ended, subscribing again")
		for {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			updates = make(chan netlink.LinkUpdate, 64)
			err := r.subscribe(updates, ctx.Done())
			if err == nil {
				break
			}
			r.log.Warn("subscribe to link events", "err", err)
		}
		r.kernelChanged()
		r.Trigger()
	}
}

// consumeLinks handles updates until the channel is closed.
func (r *Reconciler) consumeLinks(ctx context.Context, updates <-chan netlink.LinkUpdate, known map[int]string) {
	for u := range updates {
		if ctx.Err() != nil {
			continue // draining after ctx is done
		}
		r.dirty.Store(true) // for the next reconcile, which a link event triggers
		if u.Link == nil || u.Link.Attrs() == nil {
			continue // nothing to look at
		}
		a := u.Link.Attrs()
		mac := a.HardwareAddr.String()
		var ev linkEvent
		switch u.Header.Type {
		case unix.RTM_NEWLINK:
			if known[a.Index] == mac {
				r.requestRestore() // a change of a known link: its MTU, up
				continue
			}
			known[a.Index] = mac
			if !IsPrivateMAC(a.HardwareAddr) {
				continue
			}
			ev = linkEvent{mac: mac, added: true}
		case unix.RTM_DELLINK:
			prev, seen := known[a.Index]
			delete(known, a.Index)
			if !seen {
				prev = mac
			}
			ev = linkEvent{mac: prev}
		default:
			continue
		}
		select {
		case r.linkEvents <- ev:
		case <-ctx.Done():
		}
	}
}

// noteLink records a link event for the next reconcile.
func (r *Reconciler) noteLink(ev linkEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.added {
		r.log.Info("private nic appeared", "mac", ev.mac)
		r.pending[ev.mac] = time.Now().Add(hotplugWindow)
		return
	}
	delete(r.pending, ev.mac)
}

func (r *Reconciler) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

// reconcile reads metadata and applies it once. A failed metadata read keeps
// the last known good networks: it never means "no networks".
func (r *Reconciler) reconcile(ctx context.Context) {
	res, err := r.ReconcileOnce(ctx)
	if r.onReconcile != nil {
		r.onReconcile(res, err)
	}
}

// ReconcileOnce reads metadata and applies it once. Run calls it; the daemon
// may call it for a first, synchronous reconcile.
func (r *Reconciler) ReconcileOnce(ctx context.Context) (Result, error) {
	r.mu.Lock()
	haveGood := r.haveGood
	r.mu.Unlock()
	if !haveGood {
		// The metadata black hole is usually there before hc-agent starts:
		// check and pin it before the read that it would make time out.
		r.checkMetadataRoute(ctx)
	}
	nets, mdErr := r.src.PrivateNetworks(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	sameNets := false // metadata is what the last apply applied
	if mdErr != nil {
		mdErr = fmt.Errorf("read private networks from metadata: %w", mdErr)
		if !r.haveGood {
			// Nothing is known yet: configure nothing and remove nothing,
			// but keep the pin and say whether the black hole is the cause.
			var res Result
			mc, err := CheckMetadataRoute(ctx, r.h, r.pin(), false)
			if err == nil {
				res.MetadataBlackholed, res.MetadataRoute, res.Changes, res.Writes = mc.Blackholed, mc.Route, mc.Changes, len(mc.Changes)
				r.logChanges(mc.Changes)
				r.noteBlackhole(mc.Blackholed, mc.Route)
				if hint := mc.Hint(r.pin()); hint != "" {
					mdErr = fmt.Errorf("%w; %s", mdErr, hint)
				}
			}
			r.logError(mdErr)
			return res, mdErr
		}
		nets = r.lastGood
	} else {
		sameNets = metadata.EqualPrivateNetworks(nets, r.lastGood)
		r.lastGood, r.haveGood = slices.Clone(nets), true
	}

	now := time.Now()
	for mac, deadline := range r.pending {
		if listsMAC(nets, mac) && mdErr == nil {
			delete(r.pending, mac)
		} else if now.After(deadline) {
			r.log.Warn("metadata does not list hot-added private nic", "mac", mac, "waited", hotplugWindow)
			delete(r.pending, mac)
		}
	}

	if sameNets && r.unchanged() {
		res := r.last
		res.Unchanged = true
		return res, nil
	}

	desired := Desired(nets, r.opts)
	before := r.owned.Clone()
	now = time.Now()
	r.dirty.Store(false) // before apply reads the kernel: see dirty
	res, applyErr := apply(ctx, r.h, desired, &r.owned, func(c Change) bool { return r.fight.blocked(c, now) })
	if mdErr != nil && res.MetadataBlackholed {
		mdErr = fmt.Errorf("%w; %s", mdErr, MetadataCheck{Blackholed: true, Route: res.MetadataRoute}.Hint(r.pin()))
	}
	err := errors.Join(mdErr, r.finish(desired, before, res, applyErr))
	r.noteApplied(res, err)
	r.logError(err)
	return res, err
}

// noteApplied records what an apply of lastGood left: whether the kernel is
// as desired, and the findings a poll that does not read the kernel repeats.
// Called with mu held.
func (r *Reconciler) noteApplied(res Result, err error) {
	r.converged = err == nil && !res.deferred && r.watchesKernel()
	r.last = res
	r.last.Changes, r.last.Writes = nil, 0
}

// unchanged reports whether the last apply (reconcile or restore) left the
// kernel as desired and nothing has changed since: no event, no new
// options, no hot-added NIC waiting for metadata. The caller checks that
// metadata is the same. Called with mu held.
func (r *Reconciler) unchanged() bool {
	return r.converged && !r.dirty.Load() && len(r.pending) == 0
}

// checkMetadataRoute runs CheckMetadataRoute and logs what it found and
// changed.
func (r *Reconciler) checkMetadataRoute(ctx context.Context) {
	mc, err := CheckMetadataRoute(ctx, r.h, r.pin(), false)
	if err != nil {
		return // the reconcile that follows reads the same state and reports
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logChanges(mc.Changes)
	r.noteBlackhole(mc.Blackholed, mc.Route)
}

// finish does the bookkeeping after an apply: save the ownership record,
// log notes and changes and the black-hole state. It returns applyErr joined
// with a save error.
// Called with mu held.
func (r *Reconciler) finish(desired State, before Owned, res Result, applyErr error) error {
	if r.ownedPath != "" && !slices.Equal(before.Addresses, r.owned.Addresses) {
		if err := SaveOwned(r.ownedPath, r.owned); err != nil {
			applyErr = errors.Join(applyErr, err)
		}
	}
	r.logNotes(desired.Problems, res.MissingLinks)
	r.logChanges(res.Changes)
	r.noteBlackhole(res.MetadataBlackholed, res.MetadataRoute)
	return applyErr
}

// logChanges logs each change made. Called with mu held.
func (r *Reconciler) logChanges(changes []Change) {
	for _, c := range changes {
		r.log.Info("private network change", "op", string(c.Op), "kind", c.Kind, "object", c.Object, "dev", c.Dev, "reason", c.Reason)
	}
}

// noteBlackhole logs the metadata black hole when it appears and when it
// goes. Called with mu held.
func (r *Reconciler) noteBlackhole(blackholed bool, mr MetadataRoute) {
	if blackholed == r.blackholed {
		return
	}
	r.blackholed = blackholed
	if blackholed {
		r.log.Warn("metadata service is routed through a private nic", "route", mr.String(), "mac", mr.MAC, "pin_metadata_route", r.opts.PinMetadataRoute)
	} else {
		r.log.Info("metadata service route is no longer through a private nic", "dev", mr.Dev)
	}
}

// logError logs a repeating error once until it changes. Called with mu held.
func (r *Reconciler) logError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == r.lastErr {
		return
	}
	r.lastErr = msg
	if err != nil {
		r.log.Error("reconcile private networks", "err", err)
	} else {
		r.log.Info("private networks reconciled")
	}
}

// logNotes logs unusable metadata entries and NICs that metadata lists but
// the host lacks, once each time the set changes. Called with mu held.
func (r *Reconciler) logNotes(problems, missing []string) {
	notes := fmt.Sprint(problems, missing)
	if notes == r.lastNotes {
		return
	}
	r.lastNotes = notes
	for _, p := range problems {
		r.log.Warn("private network skipped", "problem", p)
	}
	for _, m := range missing {
		r.log.Info("private network waits for its nic", "mac", m)
	}
}

func listsMAC(nets []metadata.PrivateNetwork, mac string) bool {
	for _, n := range nets {
		if n.MACAddress.String() == mac {
			return true
		}
	}
	return false
}
