package floatingip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNoPeer is returned (wrapped) by Handover when no other member could
// take the floating IPs: the holder keeps them.
var ErrNoPeer = errors.New("no healthy peer to take over, keeping the floating ips")

// Handover hands the floating IPs to a healthy peer before a planned
// shutdown: this member stops being a candidate, waits (bounded by ctx or
// HandoverTimeout) until a peer claims the floating IPs, then removes its
// addresses. A member that does not hold them returns at once. So does a
// holder that sees no other alive, healthy candidate (a group of one, or
// peers down or unhealthy): it keeps the addresses, since nobody could take
// them, and returns an error wrapping ErrNoPeer. If a peer exists but does
// not take over in time the addresses stay too (better than an outage) and
// an error is returned. Run must be running; cancel its ctx afterwards.
func (g *Group) Handover(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.HandoverTimeout)
		defer cancel()
	}
	g.mu.Lock()
	running := g.running
	g.mu.Unlock()
	if !running {
		return fmt.Errorf("hand over group %s: not running", g.cfg.Name)
	}
	done := make(chan error, 1)
	select {
	case g.handoverCh <- done:
	case <-ctx.Done():
		return fmt.Errorf("hand over group %s: %w", g.cfg.Name, ctx.Err())
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("hand over group %s: %w", g.cfg.Name, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("hand over group %s: no peer took over: %w", g.cfg.Name, ctx.Err())
	}
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if holding {
		return fmt.Errorf("hand over group %s: still holding", g.cfg.Name)
	}
	return nil
}

func (g *Group) startHandover(done chan error) {
	if g.cfg.Mode != "keepalived" && !g.peerCanTake() {
		// Waiting would only delay the shutdown by the whole timeout.
		// Normal for a group of one or with every peer down: the caller
		// reports it (ErrNoPeer).
		g.log.Info("not handing over: no healthy peer")
		done <- ErrNoPeer
		return
	}
	g.mu.Lock()
	g.draining = true
	g.handoverDones = append(g.handoverDones, done)
	g.mu.Unlock()
	g.log.Info("handing over")
	g.setRole(RoleSteppingDown)
	g.publish()
	if g.cfg.Mode == "keepalived" {
		// keepalived decides who takes over; we only stop holding.
		g.stepDown(context.Background(), stepDownHandover)
		g.finishHandover()
	}
}

// peerCanTake reports whether a handover can succeed: this member does not
// hold the floating IPs (nothing to hand over), or another member would
// take them (see hasEligiblePeer).
func (g *Group) peerCanTake() bool {
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if !holding {
		return true
	}
	return hasEligiblePeer(g.view(time.Now()))
}

// hasEligiblePeer reports whether, by this member's view, the group would
// move the floating IPs to another member if this one stepped aside: a
// peer is alive, has published its state, is healthy and a candidate, and
// the members alive form a majority.
func hasEligiblePeer(v View) bool {
	v.Members = slices.Clone(v.Members)
	for i := range v.Members {
		if v.Members[i].ID == v.Self {
			v.Members[i].Candidate = false
		}
	}
	v.Preempt = false
	d := Decide(v)
	return d.Quorum && d.Leader != 0 && d.Leader != v.Self
}

// abortHandover ends a pending handover with err: this member stays a
// candidate and keeps the floating IPs.
func (g *Group) abortHandover(err error) {
	g.mu.Lock()
	g.draining = false
	for _, d := range g.handoverDones {
		d <- err
	}
	g.handoverDones = nil
	g.mu.Unlock()
	g.log.Warn("handover aborted", "err", err)
	g.setRole(RoleHolder)
	g.publish()
}

// finishHandover completes the handover once a peer holds the floating IPs.
func (g *Group) finishHandover() {
	g.mu.Lock()
	if len(g.handoverDones) == 0 {
		g.mu.Unlock()
		return
	}
	holding := g.holding && g.knownHolder == g.cfg.Self
	g.mu.Unlock()
	if holding {
		return
	}
	g.stepDown(context.Background(), stepDownHandedOver)
	g.mu.Lock()
	for _, d := range g.handoverDones {
		d <- nil
	}
	g.handoverDones = nil
	g.mu.Unlock()
}
