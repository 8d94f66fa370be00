package floatingip

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGroupFailoverTimeline checks the phases of a failover move: what the
// new holder saw, and where the time went (detection is the hub's, the
// action's latency the fake cloud's).
func TestGroupFailoverTimeline(t *testing.T) {
	type phase struct {
		Phase   Phase
		Seconds float64
	}
	for _, tt := range []struct {
		name        string
		fail        func(c *cluster)
		wantFailure Failure
		// wantSeen is when the failure is seen after the disruption.
		wantSeen time.Duration
	}{
		{name: "crash", fail: func(c *cluster) { c.crash(1) }, wantFailure: FailureDead, wantSeen: detect},
		// The holder's check fails twice (fall 2, one per second); the
		// next publish tells the others.
		{name: "unhealthy holder", fail: func(c *cluster) { c.nodes[1].probe.fail.Store(true) }, wantFailure: FailureUnhealthy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, 1, 200, 150, 120)
				time.Sleep(3 * time.Second)
				start := time.Now()
				tt.fail(c)
				time.Sleep(6 * time.Second)
				require.Equal(t, int64(2), c.cloud.holder(fipID))
				st := c.nodes[2].group.Status()
				require.NotNil(t, st.LastMove)
				tl := st.LastMove.Timeline
				assert.Equal(t, tt.wantFailure, tl.Failure)
				var got []phase
				for _, m := range tl.Marks {
					got = append(got, phase{m.Phase, m.Seconds})
				}
				want := []phase{
					{PhaseFailureSeen, 0},
					{PhaseDecision, 0}, // decided in the same evaluation
					{PhaseConfigured, 0},
					{PhaseAssignRequested, 0},
					{PhaseActionSucceeded, 0.5}, // the fake action's latency
					{PhaseVerified, 0},
				}
				assert.Equal(t, want, got)
				seen, ok := tl.Get(PhaseFailureSeen)
				require.True(t, ok)
				if tt.wantSeen > 0 {
					assert.Equal(t, tt.wantSeen, seen.At.Sub(start), "failure seen after detection")
				}
				assert.Equal(t, st.LastMove.At, tl.Marks[1].At, "the decision is the move's start")
			})
		})
	}
}

// TestGroupTimelineWithoutFailure checks a move with no holder to fail
// (an unassigned start): no failure_seen phase, the rest as usual.
func TestGroupTimelineWithoutFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 100, 150, 120)
		time.Sleep(5 * time.Second)
		st := c.nodes[2].group.Status()
		require.NotNil(t, st.LastMove)
		tl := st.LastMove.Timeline
		assert.Equal(t, FailureNone, tl.Failure)
		var got []Phase
		for _, m := range tl.Marks {
			got = append(got, m.Phase)
		}
		assert.Equal(t, []Phase{PhaseDecision, PhaseConfigured, PhaseAssignRequested, PhaseActionSucceeded, PhaseVerified}, got)
	})
}

func TestTimelineMarkKeepsLastAndOrders(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tl Timeline
	tl.mark(PhaseDecision, t0)
	tl.mark(PhaseAssignRequested, t0.Add(time.Second))
	tl.mark(PhaseActionSucceeded, t0.Add(2*time.Second))
	tl.mark(PhaseAssignRequested, t0.Add(3*time.Second)) // second address
	tl.mark(PhaseActionSucceeded, t0.Add(4*time.Second))
	tl.mark(PhaseFailureSeen, t0.Add(-time.Second))
	tl.finish()
	want := []PhaseMark{
		{Phase: PhaseFailureSeen, At: t0.Add(-time.Second)},
		{Phase: PhaseDecision, At: t0, Seconds: 1},
		{Phase: PhaseAssignRequested, At: t0.Add(3 * time.Second), Seconds: 3},
		{Phase: PhaseActionSucceeded, At: t0.Add(4 * time.Second), Seconds: 1},
	}
	assert.Equal(t, want, tl.Marks)
}
