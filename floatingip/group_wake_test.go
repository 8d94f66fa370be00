package floatingip

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metrics"
)

// TestGroupSettledLoopSleeps is issue 14's idle CPU: once a group has
// settled and nothing happens, no member's loop wakes (there was a 500 ms
// tick). The refresh interval is longer than the minute watched, so the
// holder's periodic read does not fall into it.
func TestGroupSettledLoopSleeps(t *testing.T) {
	pairUp := func(c *cluster) {
		c.peerCheck = func(context.Context, int64) (PeerState, error) { return PeerUp, nil }
	}
	tests := []struct {
		name  string
		prios []int
		setup func(c *cluster)
		// then, when set, runs once the group formed (5 s).
		then func(c *cluster)
	}{
		{"group of 2", []int{200, 150}, func(*cluster) {}, nil},
		{"group of 2 with a second path", []int{200, 150}, pairUp, nil},
		{"group of 3", []int{200, 150, 120}, func(*cluster) {}, nil},
		{"group of 5", []int{200, 150, 120, 110, 100}, func(*cluster) {}, nil},
		{"group of 3 with preemption", []int{100, 200, 120}, func(c *cluster) {
			c.cfgHook = func(cfg *GroupConfig) { cfg.Preempt, cfg.PreemptDelay = true, 5*time.Second }
		}, nil},
		{"group of 3 with a standby unhealthy", []int{200, 150, 120}, func(c *cluster) { c.nodes[3].probe.fail.Store(true) }, nil},
		// The second path matters to neither: the holder keeps the
		// addresses and the standby would not take them.
		{"pair cut off, the standby unhealthy", []int{200, 150}, func(c *cluster) {
			pairUp(c)
			c.nodes[2].probe.fail.Store(true)
		}, func(c *cluster) { c.hub.split([]int64{1}, []int64{2}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newClusterWith(t, tt.setup, 1, tt.prios...)
				if tt.then != nil {
					time.Sleep(5 * time.Second)
					tt.then(c)
				}
				time.Sleep(30 * time.Second) // settled: start-up, health, preemption done
				synctest.Wait()
				before := map[int64]int64{}
				for id, n := range c.nodes {
					before[id] = n.group.wakeups.Load()
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				for id, n := range c.nodes {
					assert.Zero(t, n.group.wakeups.Load()-before[id], "wakeups of member %d in a settled minute", id)
				}
			})
		})
	}
}

// TestGroupSecondPathRecheck checks that a standby of a pair cut off from
// its peer asks the second path again exactly when the last answer expires
// (SecondPathTTL), and takes over on the first answer that says the peer is
// down, without waiting for a tick; the holder, which keeps the addresses
// whatever the answer, does not ask again at each expiry.
func TestGroupSecondPathRecheck(t *testing.T) {
	const ttl = 10 * time.Second
	for _, downAfter := range []int{1, 3} {
		t.Run(fmt.Sprintf("down from answer %d", downAfter+1), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var asked []time.Time // by node 2, about node 1
				holderAsks := 0       // by node 1, about node 2
				c := newClusterWith(t, func(c *cluster) {
					c.cfgHook = func(cfg *GroupConfig) { cfg.SecondPathTTL = ttl }
					c.peerCheck = func(_ context.Context, id int64) (PeerState, error) {
						mu.Lock()
						defer mu.Unlock()
						if id == 2 {
							holderAsks++
							return PeerUp, nil
						}
						asked = append(asked, time.Now())
						if len(asked) > downAfter {
							return PeerDown, nil
						}
						return PeerUp, nil
					}
				}, 1, 200, 150)
				time.Sleep(5 * time.Second)
				split := time.Now()
				c.hub.split([]int64{1}, []int64{2})
				time.Sleep(time.Minute)
				mu.Lock()
				defer mu.Unlock()
				want := []time.Duration{detect}
				for i := 1; i <= downAfter; i++ {
					want = append(want, detect+time.Duration(i)*ttl)
				}
				var got []time.Duration
				for _, at := range asked {
					got = append(got, at.Sub(split))
				}
				assert.Equal(t, want, got, "second path asked at detection and at each expiry, until down")
				at, ok := c.cloud.firstAssignAt()
				if assert.True(t, ok, "node 2 took over") {
					assert.Equal(t, want[len(want)-1], at.Sub(split), "took over on the answer that said down")
				}
				// The holder asks on the events it sees (the detection, the
				// gossip of node 2's claim, which it cannot read), not at
				// every expiry.
				assert.Equal(t, 2, holderAsks, "the holder's asks")
			})
		})
	}
}

// TestGroupMembersHook checks that the member counts reach the metrics
// when they change, and only then: the hook sets labelled gauges, whose
// label hashing cost every evaluation before.
func TestGroupMembersHook(t *testing.T) {
	type count struct{ alive, healthy int }
	var calls []count
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	hooks := metricsHooks(m)
	hooks.MembersChanged = func(group string, alive, healthy int) {
		calls = append(calls, count{alive, healthy})
		m.SetGroupMembers(group, alive, healthy)
	}
	g, sm := settledGroup(t, 2, hooks)
	all := slices.Clone(sm.ms)
	steps := []struct {
		name   string
		change func()
		want   count // the last call
		calls  int
	}{
		{"first evaluation reports", func() {}, count{3, 3}, 1},
		{"nothing new: no call", func() {}, count{3, 3}, 1},
		{"member 3 unhealthy", func() { sm.ms[2].Healthy = false }, count{3, 2}, 2},
		{"member 3 dead", func() { sm.ms = sm.ms[:2] }, count{2, 2}, 3},
		{"member 3 back and healthy", func() { sm.ms = all }, count{3, 3}, 4},
	}
	for _, st := range steps {
		st.change()
		for range 3 {
			g.evaluate(t.Context())
		}
		require.Len(t, calls, st.calls, st.name)
		assert.Equal(t, st.want, calls[len(calls)-1], st.name)
		want := fmt.Sprintf(`
# HELP hcagent_group_members_healthy Alive group members whose health check passes (candidates for the floating IPs).
# TYPE hcagent_group_members_healthy gauge
hcagent_group_members_healthy{group="web"} %d
`, st.want.healthy)
		assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "hcagent_group_members_healthy"), st.name)
	}
}
