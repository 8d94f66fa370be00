package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestApplyThenRunKeepsOwnership is issue 13 item 2: `hc-agent apply`
// configures an alias IP and records it; the daemon started afterwards
// must take the record as its own (apply writes the instance record too),
// so that when metadata drops the alias, the daemon removes it. Before,
// the daemon discarded apply's record as another server's and the alias
// stayed forever.
func TestApplyThenRunKeepsOwnership(t *testing.T) {
	w := newWorld(t, spec{servers: []string{"alpha"}})
	alias := netip.MustParseAddr("10.0.0.60")
	require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", []netip.Addr{alias}))

	sdir := filepath.Join(w.dir, "alpha")
	cfgPath := filepath.Join(sdir, "config.yaml")
	require.NoError(t, os.MkdirAll(sdir, 0o700))
	require.NoError(t, os.WriteFile(cfgPath, []byte(w.config("alpha", sdir)), 0o600))
	out, err := w.c.Server("alpha").Exec(w.ctx, agentBin, "apply", "--config", cfgPath)
	require.NoError(t, err, "apply: %s", out)
	require.True(t, w.hasAddr("alpha", alias), "apply configured the alias")

	p := w.startAgent("alpha")
	w.waitPrivate(t, "alpha")
	require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", nil))
	took := waitFor(t, 15*time.Second, 20*time.Millisecond, "alias ip removed by the daemon", func() bool { return !w.hasAddr("alpha", alias) })
	t.Logf("alias %s that apply added removed %s after the metadata change", alias, took.Round(time.Millisecond))
	assert.False(t, strings.Contains(p.Output(), "state from another server discarded"), "the daemon discarded apply's state:\n%s", p.Output())
}
