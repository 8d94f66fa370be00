package floatingip

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGroupDrainAndResume drains the holder of a group of three: a peer
// takes the floating IP, the drained member stays out even when the new
// holder fails, and takes part again after Resume.
func TestGroupDrainAndResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 200, 150, 120)
		time.Sleep(3 * time.Second)
		require.NoError(t, c.nodes[1].group.Drain(t.Context()))
		assert.Equal(t, int64(2), c.cloud.holder(fipID))
		assert.Equal(t, []int64{2}, c.configuredOn())
		assert.True(t, c.nodes[1].group.Status().Drained)

		// The new holder fails its health check: the drained member, the
		// best by priority, does not take over; the third one does.
		c.nodes[2].probe.fail.Store(true)
		time.Sleep(5 * time.Second)
		assert.Equal(t, int64(3), c.cloud.holder(fipID), "the drained member took the floating IP")

		c.nodes[1].group.Resume()
		assert.False(t, c.nodes[1].group.Status().Drained)
		time.Sleep(5 * time.Second)
		st := c.nodes[1].group.Status()
		assert.NotEqual(t, RoleSteppingDown, st.Role, "resumed")
		for _, m := range c.nodes[3].group.Status().Members {
			if m.ID == 1 {
				assert.True(t, m.Candidate, "peers see the resumed member as a candidate")
			}
		}
	})
}

func TestGroupDrainStandby(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 200, 150, 120)
		time.Sleep(3 * time.Second)
		require.NoError(t, c.nodes[2].group.Drain(t.Context()))
		assert.Equal(t, int64(1), c.cloud.holder(fipID), "draining a standby moves nothing")
		// The holder crashes: the drained standby stays out, the third
		// member takes over.
		c.crash(1)
		time.Sleep(5 * time.Second)
		assert.Equal(t, int64(3), c.cloud.holder(fipID))
	})
}

func TestGroupUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 200, 150, 120)
		time.Sleep(3 * time.Second)
		require.NoError(t, c.nodes[3].group.Update(Settings{Priority: 250, MaxMovesPerMinute: 3, ExpectedSize: 3}))
		time.Sleep(2 * time.Second)
		assert.Equal(t, int64(1), c.cloud.holder(fipID), "a higher priority without preemption moves nothing")
		for _, m := range c.nodes[1].group.Status().Members {
			if m.ID == 3 {
				assert.Equal(t, 250, m.Priority, "peers see the new priority")
			}
		}
		// With preemption the better member takes it.
		require.NoError(t, c.nodes[3].group.Update(Settings{Priority: 250, Preempt: true, MaxMovesPerMinute: 3, ExpectedSize: 3}))
		require.NoError(t, c.nodes[1].group.Update(Settings{Priority: 200, Preempt: true, MaxMovesPerMinute: 3, ExpectedSize: 3}))
		require.NoError(t, c.nodes[2].group.Update(Settings{Priority: 150, Preempt: true, MaxMovesPerMinute: 3, ExpectedSize: 3}))
		time.Sleep(5 * time.Second)
		assert.Equal(t, int64(3), c.cloud.holder(fipID), "preemption to the new best member")

		assert.Error(t, c.nodes[1].group.Update(Settings{}), "invalid settings are refused")
	})
}

func TestHealthCheckerSet(t *testing.T) {
	var calls []string
	probe := func(name string, err error) Probe {
		return func(context.Context) error { calls = append(calls, name); return err }
	}
	h := NewHealthChecker(probe("old", nil), HealthConfig{Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1})
	healthy, _ := h.Check(t.Context())
	require.True(t, healthy)
	h.Set(probe("new", errors.New("down")), HealthConfig{Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 2})
	healthy, changed := h.Check(t.Context())
	assert.True(t, healthy, "one failure of the new check: fall is 2")
	assert.False(t, changed)
	healthy, changed = h.Check(t.Context())
	assert.False(t, healthy)
	assert.True(t, changed)
	assert.Equal(t, []string{"old", "new", "new"}, calls)
	assert.Equal(t, 2*time.Second, h.interval())
}

func TestGroupSetHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 200, 150, 120)
		time.Sleep(3 * time.Second)
		g := c.nodes[1].group
		require.NoError(t, g.SetHealth(HealthConfig{Type: "none", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1}))
		time.Sleep(3 * time.Second)
		assert.Equal(t, int64(1), c.cloud.holder(fipID), "a new health check moves nothing while healthy")
		assert.Error(t, g.SetHealth(HealthConfig{Type: "tcp", Interval: time.Second, Timeout: 2 * time.Second, Rise: 1, Fall: 1}), "invalid check refused")
	})
}
