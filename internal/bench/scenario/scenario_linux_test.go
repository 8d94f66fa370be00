package scenario

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/simcloud"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testEnv(t *testing.T) Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build the simulated cloud (network namespaces)")
	}
	return Env{WorkDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Trials: 1}
}

// TestConfiguredCheck checks the harness's own notion of "configured" on a
// server that the simulator configures as a DHCP image would.
func TestConfiguredCheck(t *testing.T) {
	env := testEnv(t)
	c, err := newCluster(t.Context(), env, clusterSpec{servers: 1, networks: 2, dhcp: true, holder: 0})
	require.NoError(t, err)
	t.Cleanup(c.close)
	s := c.servers[0]
	e := expect(s, c.fip)
	require.Len(t, e.nics, 2)

	ok, err := configured(s, e)
	require.NoError(t, err)
	assert.False(t, ok, "floating IP not configured yet")

	require.NoError(t, s.ConfigureFloatingIP(c.fip))
	ok, err = configured(s, e)
	require.NoError(t, err)
	assert.True(t, ok, "everything configured")

	require.NoError(t, c.unconfigure(t.Context(), s, e))
	ok, err = configured(s, e)
	require.NoError(t, err)
	assert.False(t, ok, "after unconfigure")
}

// TestKeepalivedOutageTrial runs one crash trial of the baseline on the
// simulated cloud: the outage is at least keepalived's detection time.
func TestKeepalivedOutageTrial(t *testing.T) {
	env := testEnv(t)
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		t.Skip("keepalived is not installed")
	}
	c, sub, err := outageCluster(t.Context(), env, func(c *cluster) subject { return keepalivedSubject{c} }, 0)
	require.NoError(t, err)
	t.Cleanup(c.close)
	first := c.cloud.Holder(c.fip)
	samples, failed, _, err := outageTrials(t.Context(), c, sub, crash, 1)
	require.NoError(t, err)
	require.Equal(t, 0, failed)
	require.Len(t, samples, 1)
	assert.Greater(t, samples[0], 2*time.Second, "three advertisement intervals at advert_int 1")
	assert.NotEqual(t, first, c.cloud.Holder(c.fip), "the floating IP moved")

	// A cluster whose API holder is not keepalived's MASTER is not settled:
	// the notify script of a MASTER does not run again, so only a reset
	// fixes it.
	master := c.cloud.Server(c.cloud.Holder(c.fip))
	var backup *simcloud.Server
	for _, s := range c.servers {
		if s != master {
			backup = s
			break
		}
	}
	require.NoError(t, assignTo(t.Context(), c, backup))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	assert.ErrorIs(t, sub.waitSettled(ctx), errNotServing, "API holder %s is a BACKUP", backup.Name())
	require.NoError(t, assignTo(t.Context(), c, master))
	assert.NoError(t, sub.waitSettled(t.Context()), "API holder %s is the MASTER again", master.Name())
}

// TestPrivateKeepalivedOutageTrial runs one crash trial of the private VIP
// baseline: keepalived's notify script moves the alias VIP read-modify-write
// and the private client sees the new holder.
func TestPrivateKeepalivedOutageTrial(t *testing.T) {
	env := testEnv(t)
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		t.Skip("keepalived is not installed")
	}
	res := RunPrivateOutages(t.Context(), env, bench.SubjectKeepalived, config.ViaAlias, 0)
	require.NoError(t, res.Err)
	require.Equal(t, 1, res.Crash.N, "one measured trial")
	assert.Greater(t, res.Crash.P50, 2*time.Second, "three advertisement intervals at advert_int 1")
	assert.GreaterOrEqual(t, res.RequestsPerMove, 6.0, "list servers, read and change the old holder's list, read and change its own, poll")
}
