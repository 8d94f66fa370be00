package floatingip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// refresh reads from the API who holds the addresses and updates the
// known holder. A holder that finds another server holding steps down.
func (g *Group) refresh(ctx context.Context, urgent bool) error {
	if urgent {
		ctx = g.deps.Urgent(ctx)
	}
	holder, err := g.handler.Holder(ctx)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.cfg.Name, err)
	}
	g.mu.Lock()
	g.knownHolder = holder
	lost := g.holding && g.knownHolder != g.cfg.Self
	draining := g.draining
	g.mu.Unlock()
	switch {
	case lost && draining:
		// The peer took over as asked: the hand-over is done.
		g.stepDown(ctx, stepDownHandedOver)
	case lost:
		g.stepDown(ctx, stepDownLost)
	}
	return nil
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

func (g *Group) configure(ctx context.Context) error {
	return g.handler.Configure(ctx)
}

func (g *Group) unconfigure(ctx context.Context) error {
	return g.handler.Unconfigure(ctx)
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
		g.backoffUntil, g.lostBackoff = g.moves[0].Add(time.Minute), false
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
	if result == MoveSuccess {
		g.holding = true
		g.knownHolder = g.cfg.Self
	} else {
		wait := g.cfg.Backoff
		if result == MoveError && g.failedMoves == 0 {
			wait = min(wait, failedMoveRetry)
		}
		g.backoffUntil = time.Now().Add(wait)
		// Advertised only when another member took them meanwhile; a
		// refused call or our own failed action holds back the group.
		g.lostBackoff = g.knownHolder != from && g.knownHolder != g.cfg.Self && g.knownHolder != 0
	}
	if result == MoveError {
		g.failedMoves++
	} else {
		g.failedMoves = 0
	}
	if result != MoveAborted {
		r := rec
		g.lastMove = &r
	}
	g.mu.Unlock()

	if result == MoveSuccess {
		g.setRole(RoleHolder)
		g.publish()
		g.log.Info("took floating ips", "from", from, "duration", rec.Duration)
	} else {
		if uerr := g.unconfigure(ctx); uerr != nil {
			g.log.Error("remove floating ips", "err", uerr)
		}
		g.setRole(RoleStandby)
		g.publish() // advertise the back-off
		g.log.Warn("move failed", "result", result, "err", err)
	}
	if result != MoveAborted && g.deps.Hooks.Moved != nil {
		g.deps.Hooks.Moved(g.cfg.Name, rec)
	}
}

func (g *Group) takeSteps(ctx context.Context) (MoveResult, error) {
	if err := g.configure(ctx); err != nil {
		return MoveError, fmt.Errorf("configure: %w", err)
	}
	// The API is the arbiter: re-read before assigning.
	if err := g.refresh(ctx, true); err != nil {
		return MoveError, err
	}
	if g.cfg.Mode != "keepalived" {
		v := g.view(time.Now())
		if v.ExpectedSize == 2 && g.deps.PeerCheck != nil {
			g.mu.Lock()
			v.Peer = g.peerState
			g.mu.Unlock()
		}
		if d := Decide(v); !d.Take(g.cfg.Self) && v.Holder != g.cfg.Self {
			return MoveAborted, fmt.Errorf("fresh read: %s", d.Reason)
		}
	}
	g.mu.Lock()
	before := g.knownHolder
	g.mu.Unlock()
	aerr := g.handler.Acquire(g.deps.Urgent(ctx))
	var errs []error
	if aerr != nil {
		errs = append(errs, aerr)
	}
	// Verify, whatever happened: another member may have won the race.
	if err := g.refresh(ctx, true); err != nil {
		return MoveError, errors.Join(append(errs, err)...)
	}
	g.mu.Lock()
	holder := g.knownHolder
	g.mu.Unlock()
	if holder != g.cfg.Self {
		err := errors.Join(append(errs, fmt.Errorf("verify: held by server %d", holder))...)
		if errors.Is(aerr, ErrMoveFailed) && holder == before {
			// Our action failed and nobody else moved them: not a lost
			// race but an error, retried sooner (see Backoff).
			return MoveError, err
		}
		return MoveLost, err
	}
	return MoveSuccess, nil
}

// stepDownReason says why a member stops holding.
type stepDownReason string

// Reasons to step down.
const (
	stepDownLost       stepDownReason = "api shows another holder"
	stepDownHandover   stepDownReason = "handover"
	stepDownHandedOver stepDownReason = "handed over"
	stepDownKeepalived stepDownReason = "keepalived"
)

// planned reports whether the step-down is normal operation (a hand-over,
// keepalived's decision), logged at info level, rather than a loss.
func (r stepDownReason) planned() bool { return r != stepDownLost }

// stepDown removes the addresses at once and backs off.
func (g *Group) stepDown(ctx context.Context, reason stepDownReason, attrs ...any) {
	g.mu.Lock()
	was := g.holding
	g.holding = false
	g.backoffUntil, g.lostBackoff = time.Now().Add(g.cfg.Backoff), true
	g.mu.Unlock()
	if err := g.unconfigure(ctx); err != nil {
		g.log.Error("remove floating ips", "err", err)
	}
	switch {
	case !was:
	case reason.planned():
		g.log.Info("stepped down", append([]any{"reason", string(reason)}, attrs...)...)
	default:
		g.log.Warn("stepped down", append([]any{"reason", string(reason)}, attrs...)...)
	}
	g.setRole(RoleStandby)
	g.publish()
}
