package floatingip

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingCloud counts one member's reads of the floating IPs.
type countingCloud struct {
	Cloud
	reads *atomic.Int64
}

func (c countingCloud) GetFloatingIP(ctx context.Context, idOrName string) (FloatingIP, error) {
	c.reads.Add(1)
	return c.Cloud.GetFloatingIP(ctx, idOrName)
}

func (c countingCloud) ListFloatingIPs(ctx context.Context, selector string) ([]FloatingIP, error) {
	c.reads.Add(1)
	return c.Cloud.ListFloatingIPs(ctx, selector)
}

// TestGroupOneReader checks the one-reader rule (issue 14): in steady state
// only the holder re-reads the assignments, so a group of 2, 3 or 5 makes
// the holder's requests and no more; a standby reads when it must act.
func TestGroupOneReader(t *testing.T) {
	const refresh = 10 * time.Second
	for _, prios := range [][]int{{200, 150}, {200, 150, 120}, {200, 150, 120, 110, 100}} {
		t.Run(fmt.Sprintf("group of %d", len(prios)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newClusterWith(t, func(c *cluster) {
					c.cfgHook = func(cfg *GroupConfig) { cfg.RefreshInterval = refresh }
				}, 1, prios...)
				time.Sleep(5 * time.Second) // settled: every start-up read done
				before := map[int64]int64{}
				for id, n := range c.nodes {
					before[id] = n.reads.Load()
				}
				time.Sleep(10 * refresh)
				for id, n := range c.nodes {
					got := n.reads.Load() - before[id]
					if id == 1 {
						// ±20% jitter: 8 to 12 reads in ten mean intervals.
						assert.GreaterOrEqual(t, got, int64(8), "holder reads")
						assert.LessOrEqual(t, got, int64(13), "holder reads")
						continue
					}
					assert.Zero(t, got, "standby %d makes no periodic request", id)
				}

				if len(prios) == 2 {
					return // a pair without a second path does not act alone
				}
				// The holder crashes: the standby that must act reads.
				standby := c.nodes[2].reads.Load()
				c.crash(1)
				time.Sleep(5 * time.Second)
				require.Equal(t, int64(2), c.cloud.holder(fipID))
				assert.Positive(t, c.nodes[2].reads.Load()-standby, "the taking member reads before it assigns")
			})
		})
	}
}
