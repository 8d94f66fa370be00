package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// refresh reads the floating IPs from the API and updates the known holder.
// A holder that finds another server holding steps down.
func (g *Group) refresh(ctx context.Context, urgent bool) error {
	if urgent {
		ctx = g.deps.Urgent(ctx)
	}
	var fips []FloatingIP
	var errs []error
	for _, ref := range g.cfg.FloatingIPs {
		f, err := g.deps.Cloud.GetFloatingIP(ctx, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("get floating ip %s: %w", ref, err))
			continue
		}
		fips = append(fips, f)
	}
	if g.cfg.FloatingIPSelector != "" {
		list, err := g.deps.Cloud.ListFloatingIPs(ctx, g.cfg.FloatingIPSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("list floating ips %q: %w", g.cfg.FloatingIPSelector, err))
		}
		for _, f := range list {
			if !slices.ContainsFunc(fips, func(x FloatingIP) bool { return x.ID == f.ID }) {
				fips = append(fips, f)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(fips) == 0 {
		return fmt.Errorf("group %s: no floating ips found", g.cfg.Name)
	}
	slices.SortFunc(fips, func(a, b FloatingIP) int { return int(a.ID - b.ID) })
	g.mu.Lock()
	g.fips = fips
	g.apiReadAt = time.Now()
	g.knownHolder = holderOf(fips, g.cfg.Self)
	lost := g.holding && g.knownHolder != g.cfg.Self
	g.mu.Unlock()
	for _, f := range fips {
		g.hookFIP(f)
	}
	if lost {
		g.stepDown(ctx, "api shows another holder")
	}
	return nil
}

// holderOf returns the server holding the floating IPs: self only if self
// holds all of them, else the holder of the first assigned one.
func holderOf(fips []FloatingIP, self int64) int64 {
	all := true
	var first int64
	for _, f := range fips {
		if f.ServerID != self {
			all = false
		}
		if first == 0 && f.ServerID != 0 && f.ServerID != self {
			first = f.ServerID
		}
	}
	if all && len(fips) > 0 {
		return self
	}
	return first
}

// adoptOrClean runs once at start: a holder by the API configures its
// addresses and claims them (restart without a move); others remove any
// address the group left behind.
func (g *Group) adoptOrClean(ctx context.Context) {
	g.mu.Lock()
	mine := g.knownHolder == g.cfg.Self
	g.mu.Unlock()
	if mine {
		if err := g.configure(ctx); err != nil {
			g.log.Error("configure floating ips", "err", err)
			return
		}
		g.mu.Lock()
		g.holding = true
		g.mu.Unlock()
		g.setRole(RoleHolder)
		g.log.Info("holding floating ips by api at start")
		return
	}
	if err := g.unconfigure(ctx); err != nil {
		g.log.Error("remove floating ips", "err", err)
	}
}

func (g *Group) prefixes() ([]netip.Prefix, error) {
	g.mu.Lock()
	fips := slices.Clone(g.fips)
	g.mu.Unlock()
	var ps []netip.Prefix
	for _, f := range fips {
		p, err := HostPrefix(f, g.cfg.IPv6Host)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (g *Group) configure(ctx context.Context) error {
	ps, err := g.prefixes()
	if err != nil {
		return err
	}
	if err := g.deps.Host.Set(ctx, g.owner, ps); err != nil {
		return err
	}
	g.setConfigured(true)
	return nil
}

func (g *Group) unconfigure(ctx context.Context) error {
	if err := g.deps.Host.Set(ctx, g.owner, nil); err != nil {
		return err
	}
	g.setConfigured(false)
	return nil
}

func (g *Group) setConfigured(c bool) {
	g.mu.Lock()
	changed := g.configured != c
	g.configured = c
	fips := slices.Clone(g.fips)
	g.mu.Unlock()
	if changed {
		for _, f := range fips {
			g.hookFIP(f)
		}
	}
}

func (g *Group) hookFIP(f FloatingIP) {
	if g.deps.Hooks.FIPChanged == nil {
		return
	}
	g.mu.Lock()
	configured, assigned := g.configured, f.ServerID == g.cfg.Self
	g.mu.Unlock()
	g.deps.Hooks.FIPChanged(g.cfg.Name, f, configured, assigned)
}

// movesAllowed prunes the move window and reports whether another attempt
// fits under the cap.
func (g *Group) movesAllowed(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.moves = slices.DeleteFunc(g.moves, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	return len(g.moves) < g.cfg.MaxMovesPerMinute
}

// failedMoveRetry is the wait before the first retry of a move that failed
// on an error; see GroupConfig.Backoff.
const failedMoveRetry = time.Second

// take runs the failover flow: configure locally first (fast path), read
// the holder from the API, assign, wait for the action and verify. On any
// failure it removes the addresses and backs off.
func (g *Group) take(ctx context.Context, reason string) {
	start := time.Now()
	if !g.movesAllowed(start) {
		g.log.Warn("move cap reached", "max_per_minute", g.cfg.MaxMovesPerMinute)
		g.mu.Lock()
		// The next attempt fits once the oldest leaves the window.
		g.backoffUntil = g.moves[0].Add(time.Minute)
		g.mu.Unlock()
		return
	}
	g.mu.Lock()
	g.moves = append(g.moves, start)
	from := g.knownHolder
	g.mu.Unlock()
	rec := MoveRecord{At: start, From: from, To: g.cfg.Self}
	g.log.Info("taking floating ips", "from", from, "reason", reason)

	result, err := g.takeSteps(ctx)
	rec.Duration = time.Since(start)
	rec.Result = result
	if err != nil {
		rec.Error = err.Error()
	}
	g.mu.Lock()
	if result == "success" {
		g.holding = true
		g.knownHolder = g.cfg.Self
	} else {
		wait := g.cfg.Backoff
		if result == "error" && g.failedMoves == 0 {
			wait = min(wait, failedMoveRetry)
		}
		g.backoffUntil = time.Now().Add(wait)
	}
	if result == "error" {
		g.failedMoves++
	} else {
		g.failedMoves = 0
	}
	if result != "aborted" {
		r := rec
		g.lastMove = &r
	}
	g.mu.Unlock()

	if result == "success" {
		g.setRole(RoleHolder)
		g.publish()
		g.log.Info("took floating ips", "from", from, "duration", rec.Duration)
	} else {
		if uerr := g.unconfigure(ctx); uerr != nil {
			g.log.Error("remove floating ips", "err", uerr)
		}
		g.setRole(RoleStandby)
		g.log.Warn("move failed", "result", result, "err", err)
	}
	if result != "aborted" && g.deps.Hooks.Moved != nil {
		g.deps.Hooks.Moved(g.cfg.Name, rec)
	}
}

func (g *Group) takeSteps(ctx context.Context) (string, error) {
	if err := g.configure(ctx); err != nil {
		return "error", fmt.Errorf("configure: %w", err)
	}
	// The API is the arbiter: re-read before assigning.
	if err := g.refresh(ctx, true); err != nil {
		return "error", err
	}
	if g.cfg.Mode != "keepalived" {
		v := g.view(time.Now())
		if v.ExpectedSize == 2 && g.deps.PeerCheck != nil {
			g.mu.Lock()
			v.Peer = g.peerState
			g.mu.Unlock()
		}
		if d := Decide(v); !d.Take(g.cfg.Self) && v.Holder != g.cfg.Self {
			return "aborted", fmt.Errorf("fresh read: %s", d.Reason)
		}
	}
	g.mu.Lock()
	fips := slices.Clone(g.fips)
	before := g.knownHolder
	g.mu.Unlock()
	uctx := g.deps.Urgent(ctx)
	var errs []error
	// callFailed: an assign call or the wait for it failed. The API may
	// have refused because another member's action runs (locked), so
	// only failed actions (they ran and ended in "error") count as our
	// own failure below.
	callFailed := false
	for _, f := range fips {
		if f.ServerID == g.cfg.Self {
			continue
		}
		a, err := g.deps.Cloud.Assign(uctx, f.ID, g.cfg.Self)
		if err != nil {
			errs = append(errs, fmt.Errorf("assign floating ip %d: %w", f.ID, err))
			callFailed = true
			continue
		}
		wctx, cancel := context.WithTimeout(uctx, g.cfg.ActionTimeout)
		a, err = g.deps.Cloud.WaitAction(wctx, a.ID)
		cancel()
		switch {
		case a.Status == "error":
			// The action ran and failed; cloudapi also returns an error
			// for it.
			errs = append(errs, fmt.Errorf("action %d: %s %s", a.ID, a.Status, a.Error))
		case err != nil:
			errs = append(errs, fmt.Errorf("wait action %d: %w", a.ID, err))
			callFailed = true
		case a.Status != "success":
			errs = append(errs, fmt.Errorf("action %d: %s %s", a.ID, a.Status, a.Error))
			callFailed = true
		}
	}
	// Verify, whatever happened: another member may have won the race.
	if err := g.refresh(ctx, true); err != nil {
		return "error", errors.Join(append(errs, err)...)
	}
	g.mu.Lock()
	holder := g.knownHolder
	g.mu.Unlock()
	if holder != g.cfg.Self {
		err := errors.Join(append(errs, fmt.Errorf("verify: held by server %d", holder))...)
		if len(errs) > 0 && !callFailed && holder == before {
			// Our action failed and nobody else moved them: not a lost
			// race but an error, retried sooner (see Backoff).
			return "error", err
		}
		return "lost", err
	}
	return "success", nil
}

// stepDown removes the addresses at once and backs off.
func (g *Group) stepDown(ctx context.Context, reason string) {
	g.mu.Lock()
	was := g.holding
	g.holding = false
	g.backoffUntil = time.Now().Add(g.cfg.Backoff)
	g.mu.Unlock()
	if err := g.unconfigure(ctx); err != nil {
		g.log.Error("remove floating ips", "err", err)
	}
	if was {
		g.log.Warn("stepped down", "reason", reason)
	}
	g.setRole(RoleStandby)
	g.publish()
}
