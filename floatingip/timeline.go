package floatingip

import (
	"context"
	"slices"
	"time"
)

// Phase is one step of a move's timeline (issue 14): where the seconds of
// a failover go.
type Phase string

// Phases of a move, in order. Each PhaseMark's Seconds is the time since
// the mark before it; FailureSeen has none before it.
const (
	// PhaseFailureSeen: this member saw the holder fail (see Failure).
	PhaseFailureSeen Phase = "failure_seen"
	// PhaseDecision: the group decided to take the addresses.
	PhaseDecision Phase = "decision"
	// PhaseConfigured: the addresses are configured on this host (the
	// fast path, before the API is asked).
	PhaseConfigured Phase = "configured"
	// PhaseAssignRequested: the API accepted the last assign request
	// (after the arbiter's fresh read).
	PhaseAssignRequested Phase = "assign_requested"
	// PhaseActionSucceeded: the last assign action was seen succeeding.
	PhaseActionSucceeded Phase = "action_succeeded"
	// PhaseVerified: a fresh API read shows this server holding.
	PhaseVerified Phase = "verified"
)

// Phases lists every phase in timeline order.
var Phases = []Phase{PhaseFailureSeen, PhaseDecision, PhaseConfigured, PhaseAssignRequested, PhaseActionSucceeded, PhaseVerified}

// Failure is what a member saw of the holder that made it move.
type Failure string

// Failures. memberlist does not report a suspect member to its delegates,
// so a crash is seen when the member is declared dead.
const (
	// FailureDead: failure detection declared the holder dead.
	FailureDead Failure = "dead"
	// FailureLeft: the holder left the group (shutdown or hand-over).
	FailureLeft Failure = "left"
	// FailureUnhealthy: the holder reported failing its health check.
	FailureUnhealthy Failure = "unhealthy"
	// FailureNotCandidate: the holder stopped being a candidate (it
	// drains for a hand-over).
	FailureNotCandidate Failure = "not_candidate"
	// FailureNone: no holder failure was seen (no holder, preemption, or
	// a retry after the failure's move).
	FailureNone Failure = "none"
)

// PhaseMark is one phase of a Timeline.
type PhaseMark struct {
	Phase Phase     `json:"phase"`
	At    time.Time `json:"at"`
	// Seconds is the time since the previous mark (0 for the first).
	Seconds float64 `json:"seconds"`
}

// Timeline is the record of one move's phases. Phases that the move did
// not reach (an aborted or failed move) are missing.
type Timeline struct {
	Failure Failure     `json:"failure"`
	Marks   []PhaseMark `json:"phases"`
}

// mark sets phase to at. A group with several addresses marks the assign
// and the action once per address and keeps the last: the group's move is
// done when the last is. Seconds are filled in by finish.
func (t *Timeline) mark(p Phase, at time.Time) {
	for i, m := range t.Marks {
		if m.Phase == p {
			t.Marks[i].At = at
			return
		}
	}
	t.Marks = append(t.Marks, PhaseMark{Phase: p, At: at})
}

// finish puts the marks in phase order and sets each one's Seconds.
func (t *Timeline) finish() {
	order := map[Phase]int{}
	for i, p := range Phases {
		order[p] = i
	}
	slices.SortStableFunc(t.Marks, func(a, b PhaseMark) int { return order[a.Phase] - order[b.Phase] })
	for i := range t.Marks {
		t.Marks[i].Seconds = 0
		if i > 0 {
			t.Marks[i].Seconds = t.Marks[i].At.Sub(t.Marks[i-1].At).Seconds()
		}
	}
}

// Get returns the mark of p, if the timeline reached it.
func (t Timeline) Get(p Phase) (PhaseMark, bool) {
	for _, m := range t.Marks {
		if m.Phase == p {
			return m, true
		}
	}
	return PhaseMark{}, false
}

type timelineKey struct{}

// withTimeline lets a Handler's Acquire mark the phases only it sees (the
// assign request and the action's success) on the group's timeline.
func withTimeline(ctx context.Context, t *Timeline) context.Context {
	return context.WithValue(ctx, timelineKey{}, t)
}

// markPhase marks p now on the timeline of ctx, if it has one. The group
// calls Acquire from its own goroutine, so no lock is needed.
func markPhase(ctx context.Context, p Phase) {
	if t, ok := ctx.Value(timelineKey{}).(*Timeline); ok {
		t.mark(p, time.Now())
	}
}
