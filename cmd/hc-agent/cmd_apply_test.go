package main

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// The apply tests only use --dry-run or fail before touching netlink: a
// real apply would act on this machine's network. netconf's own tests cover
// applying inside network namespaces.
func TestApply(t *testing.T) {
	srv := metadatatest.New(t)
	// A MAC no NIC of this machine has: the plan is empty.
	srv.SetPrivateNetworks([]metadata.PrivateNetwork{{
		IP:           netip.MustParseAddr("10.0.0.2"),
		InterfaceNum: 1,
		MACAddress:   net.HardwareAddr{0x86, 0, 0, 0xfe, 0xed, 0x01},
		NetworkID:    1234,
		NetworkName:  "nw-test1",
		Network:      netip.MustParsePrefix("10.0.0.0/8"),
		Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
		Gateway:      netip.MustParseAddr("10.0.0.1"),
	}})
	stateDir := t.TempDir()
	cfg := writeFile(t, "config.yaml", "state_dir: "+stateDir+"\nmetadata:\n  endpoint: "+srv.URL()+"\n  attempts: 1\n", 0o644)
	down := metadatatest.New(t)
	down.SetStatus(metadata.KeyPrivateNetworks, 500, -1)
	cfgDown := writeFile(t, "config.yaml", "state_dir: "+stateDir+"\nmetadata:\n  endpoint: "+down.URL()+"\n  attempts: 1\n", 0o644)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "dry run", args: []string{"apply", "--config", cfg, "--dry-run"}, wantStdout: "nothing to change\nno API token: floating IP addresses not planned\n"},
		{name: "metadata down", args: []string{"apply", "--config", cfgDown, "--dry-run"}, wantCode: 1, wantStderr: "read private networks from metadata"},
		{name: "argument", args: []string{"apply", "--config", cfg, "now"}, wantCode: 2, wantStderr: "takes no arguments"},
		{name: "help", args: []string{"apply", "--help"}, wantStdout: "Usage: hc-agent apply [--dry-run]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			assert.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			if tt.name == "help" {
				assert.True(t, strings.HasPrefix(r.stdout, tt.wantStdout), r.stdout)
			} else {
				assert.Equal(t, tt.wantStdout, r.stdout)
			}
			assert.Contains(t, r.stderr, tt.wantStderr)
		})
	}
}

// TestApplyDryRunFloatingIPs checks that with a token the dry run also
// plans the floating IP addresses the API assigns to this server, and only
// those, without writing anything (the plan reads this machine's links and
// addresses; it needs a public NIC, found by its default route).
func TestApplyDryRunFloatingIPs(t *testing.T) {
	const token = "dry-run-token"
	sim := cloudapitest.New(cloudapitest.WithTokens(token))
	t.Cleanup(sim.Close)
	api := httptest.NewServer(sim)
	t.Cleanup(api.Close)
	self := sim.AddServer(cloudapitest.Server{Name: "web1", PublicIPv4: netip.MustParseAddr("192.0.2.10")})
	other := sim.AddServer(cloudapitest.Server{Name: "web2", PublicIPv4: netip.MustParseAddr("192.0.2.11")})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "here", Type: "ipv4", Prefix: netip.MustParsePrefix("203.0.113.1/32"), ServerID: self})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "there", Type: "ipv4", Prefix: netip.MustParsePrefix("203.0.113.2/32"), ServerID: other})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "v6", Type: "ipv6", Prefix: netip.MustParsePrefix("2001:db8:5::/64"), ServerID: self})

	md := metadatatest.New(t)
	md.SetSummary(metadata.Summary{Hostname: "web1", InstanceID: self, PublicIPv4: netip.MustParseAddr("192.0.2.10")})
	md.SetPrivateNetworks(nil)
	stateDir := t.TempDir()
	base := "state_dir: " + stateDir + "\nmetadata:\n  endpoint: " + md.URL() + "\n  attempts: 1\napi:\n  endpoint: " + api.URL + "/v1\n"
	cfg := writeFile(t, "config.yaml", base, 0o644)
	cfgOff := writeFile(t, "config.yaml", base+"floating_ips:\n  enabled: false\n", 0o644)

	tests := []struct {
		name       string
		cfg, token string
		wantCode   int
		wantStdout *regexp.Regexp
		wantStderr string
	}{
		{
			name: "assigned here are planned", cfg: cfg, token: token,
			wantStdout: regexp.MustCompile(`^nothing to change\n` +
				`add address 203\.0\.113\.1/32 dev \S+ \(floating ip of manager\)\n` +
				`add address 2001:db8:5::1/64 dev \S+ \(floating ip of manager\)\n$`),
		},
		{
			name: "floating ips disabled", cfg: cfgOff, token: token,
			wantStdout: regexp.MustCompile(`^nothing to change\nfloating_ips disabled: floating IP addresses not planned\n$`),
		},
		{
			name: "api refuses the token", cfg: cfg, token: "not-the-token", wantCode: 1,
			wantStdout: regexp.MustCompile(`^nothing to change\n$`),
			wantStderr: "plan floating ip addresses",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, map[string]string{"HCLOUD_TOKEN": tc.token}, "apply", "--config", tc.cfg, "--dry-run")
			require.Equal(t, tc.wantCode, r.code, "stderr: %s", r.stderr)
			assert.Regexp(t, tc.wantStdout, r.stdout)
			assert.Contains(t, r.stderr, tc.wantStderr)
			assert.NotContains(t, r.stderr+r.stdout, tc.token)
		})
	}
	for _, rec := range sim.RequestLog() {
		assert.Equal(t, "GET", rec.Method, "dry run changes nothing: %s %s", rec.Method, rec.Path)
	}
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "dry run writes no state")
}
