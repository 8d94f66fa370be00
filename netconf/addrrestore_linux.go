package netconf

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
)

// RestoreTarget is one kind of address the AddressRestorer keeps: Restore
// puts back what of its own someone else deleted, leaving out the writes
// skip refuses, and returns the adds it made (FloatingIPApplier.Restore,
// PrivateVIPs.Restore). Kind names it in logs and metrics.
type RestoreTarget struct {
	Kind    string
	Restore func(ctx context.Context, skip func(Change) bool) ([]Change, error)
}

// AddressRestorer puts back the floating IP addresses and private VIPs of
// hc-agent that someone else deletes (a DHCP client's flush of the public
// NIC, `ip addr flush`, a network manager's restart) as soon as the kernel
// reports a deletion, as the Reconciler does for the private networks
// (issue 13): without it a floating IP address was back only at the owner's
// next read of the API, minutes later, and the holder dropped its traffic
// meanwhile. The same settling and fight guard apply: a restore follows
// restoreSettle of quiet, and each address gets restoreLimit restores per
// restoreWindow, then restoreBackoff of being left alone.
type AddressRestorer struct {
	subscribe AddrSubscribeFunc
	targets   []RestoreTarget
	log       *slog.Logger
	onRestore func(kind string, backedOff bool)
	fight     *fightGuard
	req       chan struct{}
	// runCtx is Run's context: a subscription error after it ended is the
	// subscription closing at shutdown, not news.
	runCtx atomic.Pointer[context.Context]
}

// NewAddressRestorer returns a restorer of targets that learns of deletions
// through subscribe (nil: the address events of events, which the
// Reconciler of the namespace may share; nil events: a source of its own in
// the current namespace). onRestore, when set, is called for every restore
// and every back-off, with the target's Kind.
func NewAddressRestorer(subscribe AddrSubscribeFunc, events *KernelEvents, log *slog.Logger,
	onRestore func(kind string, backedOff bool), targets ...RestoreTarget) *AddressRestorer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &AddressRestorer{
		subscribe: subscribe, targets: targets, log: log, onRestore: onRestore,
		fight: newFightGuard(), req: make(chan struct{}, 1),
	}
	if r.subscribe == nil {
		if events == nil {
			events = NewKernelEvents(nil)
		}
		r.subscribe = events.Addrs(func(err error) {
			if ctx := r.runCtx.Load(); ctx != nil && (*ctx).Err() != nil {
				return
			}
			log.Warn("address event subscription error", "err", err)
			r.request()
		})
	}
	return r
}

// request asks Run to restore soon; it never blocks.
func (r *AddressRestorer) request() {
	select {
	case r.req <- struct{}{}:
	default:
	}
}

// event asks for a restore on every deletion of an address (of any
// family: floating IPs are IPv4 and IPv6); additions are no news. Our own
// removals cost one address dump each and no write.
func (r *AddressRestorer) event(u netlink.AddrUpdate) {
	if !u.NewAddr {
		r.request()
	}
}

// Run restores on deletion events until ctx is done. It returns an error
// only when the first subscription fails.
func (r *AddressRestorer) Run(ctx context.Context) error {
	r.runCtx.Store(&ctx)
	ch := make(chan netlink.AddrUpdate, 64)
	if err := r.subscribe(ch, ctx.Done()); err != nil {
		return fmt.Errorf("restore addresses: subscribe to address events: %w", err)
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchEvents(ctx, r.log, "address", r.subscribe, ch, r.event, r.request)
	}()
	defer func() { <-watched }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.req:
			settle(ctx, r.req)
			r.restore(ctx, time.Now())
		}
	}
}

// restore asks every target to put back what is missing and counts the
// adds against the fight guard.
func (r *AddressRestorer) restore(ctx context.Context, now time.Time) {
	for _, t := range r.targets {
		changes, err := t.Restore(ctx, func(c Change) bool { return r.fight.blocked(c, now) })
		if err != nil && ctx.Err() == nil {
			r.log.Warn("restore after an external deletion", "kind", t.Kind, "err", err)
		}
		for _, c := range changes {
			r.log.Info("restored after an external deletion", "kind", t.Kind, "object", c.Object, "dev", c.Dev)
			r.fight.restored(c, t.Kind, now, r.log, r.onRestore)
		}
	}
}
