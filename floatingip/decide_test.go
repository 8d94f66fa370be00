package floatingip

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := func(id int64, prio int, alive, healthy bool) Member {
		return Member{ID: id, Priority: prio, Alive: alive, Healthy: healthy, Candidate: true, Since: t0}
	}
	draining := m(1, 100, true, true)
	draining.Candidate = false
	starting := m(1, 100, true, false)
	starting.Starting = true
	backingOff := m(1, 200, true, true)
	backingOff.BackingOff = true
	late := m(3, 200, true, true)
	late.Since = t0.Add(50 * time.Second)

	tests := []struct {
		name       string
		view       View
		wantLeader int64
		wantQuorum bool
	}{
		{"unassigned picks highest priority",
			View{Self: 1, Members: []Member{m(1, 100, true, true), m(2, 150, true, true), m(3, 120, true, true)}, ExpectedSize: 3}, 2, true},
		{"tie broken by lowest id",
			View{Self: 3, Members: []Member{m(3, 100, true, true), m(2, 100, true, true), m(5, 100, true, true)}, ExpectedSize: 3}, 2, true},
		{"keep healthy holder over higher priority",
			View{Self: 1, Holder: 1, Members: []Member{m(1, 100, true, true), m(2, 150, true, true), m(3, 120, true, true)}, ExpectedSize: 3}, 1, true},
		{"dead holder replaced",
			View{Self: 2, Holder: 1, Members: []Member{m(1, 200, false, true), m(2, 150, true, true), m(3, 120, true, true)}, ExpectedSize: 3}, 2, true},
		{"absent holder replaced",
			View{Self: 2, Holder: 1, Members: []Member{m(2, 150, true, true), m(3, 120, true, true)}, ExpectedSize: 3}, 2, true},
		{"unhealthy holder replaced",
			View{Self: 3, Holder: 1, Members: []Member{m(1, 200, true, false), m(2, 150, true, false), m(3, 120, true, true)}, ExpectedSize: 3}, 3, true},
		{"member backing off is passed over",
			View{Self: 3, Holder: 2, Members: []Member{backingOff, m(2, 150, false, true), m(3, 120, true, true)}, ExpectedSize: 3}, 3, true},
		{"draining holder hands over",
			View{Self: 2, Holder: 1, Members: []Member{draining, m(2, 50, true, true)}, ExpectedSize: 2}, 2, true},
		{"holder not a member replaced",
			View{Self: 2, Holder: 99, Members: []Member{m(1, 100, true, true), m(2, 150, true, true)}, ExpectedSize: 2}, 2, true},
		{"starting holder kept",
			View{Self: 2, Holder: 1, Members: []Member{starting, m(2, 150, true, true)}, ExpectedSize: 2}, 1, true},
		{"starting member not elected",
			View{Self: 2, Members: []Member{starting, m(2, 50, true, true)}, ExpectedSize: 2}, 2, true},
		{"no eligible member",
			View{Self: 1, Holder: 1, Members: []Member{m(1, 100, true, false), m(2, 150, true, false)}, ExpectedSize: 2}, 0, true},
		{"minority side does not act",
			View{Self: 3, Holder: 1, Members: []Member{m(1, 200, false, true), m(2, 150, false, true), m(3, 120, true, true)}, ExpectedSize: 3}, 3, false},
		{"majority side of a split acts",
			View{Self: 2, Holder: 3, Members: []Member{m(1, 100, true, true), m(2, 150, true, true), m(3, 120, false, true)}, ExpectedSize: 3}, 2, true},
		{"half of four is no majority",
			View{Self: 1, Members: []Member{m(1, 100, true, true), m(2, 150, true, true)}, ExpectedSize: 4}, 2, false},
		{"pair: peer unknown does not act",
			View{Self: 2, Holder: 1, Members: []Member{m(2, 100, true, true)}, ExpectedSize: 2}, 2, false},
		{"pair: peer up by second path does not act",
			View{Self: 2, Holder: 1, Members: []Member{m(2, 100, true, true)}, ExpectedSize: 2, Peer: PeerUp}, 2, false},
		{"pair: peer down by second path acts",
			View{Self: 2, Holder: 1, Members: []Member{m(2, 100, true, true)}, ExpectedSize: 2, Peer: PeerDown}, 2, true},
		{"pair: both alive",
			View{Self: 2, Holder: 1, Members: []Member{m(1, 100, true, true), m(2, 100, true, true)}, ExpectedSize: 2}, 1, true},
		{"single member group",
			View{Self: 7, Members: []Member{m(7, 100, true, true)}, ExpectedSize: 1}, 7, true},
		{"preempt after delay",
			View{Self: 3, Holder: 1, Members: []Member{m(1, 100, true, true), m(3, 200, true, true)}, ExpectedSize: 2,
				Preempt: true, PreemptDelay: 30 * time.Second, Now: t0.Add(30 * time.Second)}, 3, true},
		{"preempt waits for delay",
			View{Self: 3, Holder: 1, Members: []Member{m(1, 100, true, true), late}, ExpectedSize: 2,
				Preempt: true, PreemptDelay: 30 * time.Second, Now: t0.Add(60 * time.Second)}, 1, true},
		{"preempt off keeps holder",
			View{Self: 3, Holder: 1, Members: []Member{m(1, 100, true, true), m(3, 200, true, true)}, ExpectedSize: 2, Now: t0.Add(time.Hour)}, 1, true},
		{"preempt only to higher priority",
			View{Self: 2, Holder: 3, Members: []Member{m(2, 100, true, true), m(3, 100, true, true)}, ExpectedSize: 2,
				Preempt: true, Now: t0.Add(time.Hour)}, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.view)
			assert.Equal(t, tt.wantLeader, got.Leader, "leader (reason %q)", got.Reason)
			assert.Equal(t, tt.wantQuorum, got.Quorum, "quorum (reason %q)", got.Reason)
			assert.NotEmpty(t, got.Reason)
			// Determinism: the order of members does not matter.
			rev := tt.view
			rev.Members = make([]Member, len(tt.view.Members))
			for i, mm := range tt.view.Members {
				rev.Members[len(rev.Members)-1-i] = mm
			}
			assert.Equal(t, got, Decide(rev))
		})
	}
}

func TestDecisionTake(t *testing.T) {
	d := Decision{Leader: 2, Quorum: true}
	assert.True(t, d.Take(2))
	assert.False(t, d.Take(1))
	assert.False(t, Decision{Leader: 2}.Take(2))
	assert.False(t, Decision{Quorum: true}.Take(0))
}

// TestPreemptDue checks the deadline the group loop sleeps until instead
// of polling: when, by time alone, Decide turns to a preemption, and that
// Decide does so exactly then.
func TestPreemptDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const delay = 30 * time.Second
	m := func(id int64, prio int, since time.Time) Member {
		return Member{ID: id, Priority: prio, Alive: true, Healthy: true, Candidate: true, Since: since}
	}
	unhealthy := m(1, 100, t0)
	unhealthy.Healthy = false
	tests := []struct {
		name    string
		preempt bool
		members []Member
		now     time.Time
		want    time.Time // zero: none ahead
	}{
		{"better member eligible since t0", true, []Member{m(1, 100, t0), m(2, 200, t0.Add(time.Second))}, t0.Add(2 * time.Second), t0.Add(time.Second + delay)},
		{"preemption off", false, []Member{m(1, 100, t0), m(2, 200, t0)}, t0, time.Time{}},
		{"already due", true, []Member{m(1, 100, t0), m(2, 200, t0)}, t0.Add(delay), time.Time{}},
		{"no better member", true, []Member{m(1, 200, t0), m(2, 100, t0)}, t0, time.Time{}},
		{"equal priority", true, []Member{m(1, 200, t0), m(2, 200, t0)}, t0, time.Time{}},
		{"holder not eligible: no preemption, a failover", true, []Member{unhealthy, m(2, 200, t0)}, t0, time.Time{}},
		{"better member not yet eligible", true, []Member{m(1, 100, t0), m(2, 200, time.Time{})}, t0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := View{Self: 2, Holder: 1, Members: tt.members, ExpectedSize: 2, Preempt: tt.preempt, PreemptDelay: delay, Now: tt.now}
			at, ok := preemptDue(v)
			assert.Equal(t, !tt.want.IsZero(), ok)
			assert.Equal(t, tt.want, at)
			if !ok {
				return
			}
			assert.Equal(t, int64(1), Decide(v).Leader, "no preemption before the deadline")
			v.Now = at.Add(-time.Nanosecond)
			assert.Equal(t, int64(1), Decide(v).Leader, "no preemption a moment before the deadline")
			v.Now = at
			assert.Equal(t, int64(2), Decide(v).Leader, "preemption at the deadline")
		})
	}
}
