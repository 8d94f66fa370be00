package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metrics"
)

func TestGroupOwned(t *testing.T) {
	groups := []config.Group{
		{Name: "web", FloatingIPs: []string{"web-v4", "42"}},
		{Name: "db", FloatingIPSelector: "role=db"},
	}
	excl, err := groupOwned(groups)
	require.NoError(t, err)
	tests := []struct {
		name string
		fip  floatingip.FloatingIP
		want bool
	}{
		{"by name", floatingip.FloatingIP{ID: 1, Name: "web-v4"}, true},
		{"by id", floatingip.FloatingIP{ID: 42, Name: "other"}, true},
		{"by selector", floatingip.FloatingIP{ID: 2, Name: "x", Labels: map[string]string{"role": "db"}}, true},
		{"selector mismatch", floatingip.FloatingIP{ID: 3, Name: "y", Labels: map[string]string{"role": "web"}}, false},
		{"unrelated", floatingip.FloatingIP{ID: 4, Name: "z"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, excl(tc.fip))
		})
	}
	t.Run("bad selector", func(t *testing.T) {
		_, err := groupOwned([]config.Group{{Name: "bad", FloatingIPSelector: "=="}})
		assert.ErrorContains(t, err, "group bad")
	})
}

func TestIPv6HostOf(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Addr
		wantErr bool
	}{
		{"", netip.Addr{}, false},
		{"::2", netip.MustParseAddr("::2"), false},
		{"nonsense", netip.Addr{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cfg := config.Default()
			cfg.FloatingIPs.IPv6Host = tc.in
			got, err := ipv6HostOf(cfg)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// nopHost is a floatingip.Host that records nothing.
type nopHost struct{}

func (nopHost) Set(context.Context, string, []netip.Prefix) error { return nil }

// TestWireFloatingIP checks which floating IP components Wire provides. It
// opens a netlink handle in the current namespace but sends nothing.
func TestWireFloatingIP(t *testing.T) {
	off := false
	tests := []struct {
		name       string
		enabled    *bool
		host       floatingip.Host
		ownedJSON  string
		wantErr    bool
		wantMgr    bool
		wantGroups bool
	}{
		{name: "default enabled", wantMgr: true, wantGroups: true},
		{name: "disabled without host", enabled: &off},
		{name: "disabled with given host", enabled: &off, host: nopHost{}, wantGroups: true},
		{name: "given host enabled", host: nopHost{}, wantMgr: true, wantGroups: true},
		{name: "corrupt ownership record", ownedJSON: "{", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.StateDir = t.TempDir()
			cfg.FloatingIPs.Enabled = tc.enabled
			if tc.ownedJSON != "" {
				writeFile(t, filepath.Join(cfg.StateDir, FloatingIPOwnedFile), tc.ownedJSON)
			}
			deps, closeDeps, err := Wire(cfg, slog.New(slog.DiscardHandler), metrics.BuildInfo{}, System{FloatingIPHost: tc.host})
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			t.Cleanup(closeDeps)
			assert.Equal(t, tc.wantMgr, deps.NewFloatingIP != nil, "NewFloatingIP")
			assert.Equal(t, tc.wantGroups, deps.NewGroups != nil, "NewGroups")
		})
	}
}
