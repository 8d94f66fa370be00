package keepalived

import (
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

func TestAliasScriptRenderRequires(t *testing.T) {
	ok := AliasScript{Endpoint: "http://x/v1", HeaderFile: "h", NetworkID: 1, ServerID: 2, VIP: netip.MustParseAddr("10.0.0.100"), LogFile: "l"}
	tests := []struct {
		name   string
		mutate func(*AliasScript)
		ok     bool
	}{
		{"complete", func(*AliasScript) {}, true},
		{"no endpoint", func(s *AliasScript) { s.Endpoint = "" }, false},
		{"no network", func(s *AliasScript) { s.NetworkID = 0 }, false},
		{"no server", func(s *AliasScript) { s.ServerID = 0 }, false},
		{"ipv6 vip", func(s *AliasScript) { s.VIP = netip.MustParseAddr("fd00::1") }, false},
		{"no log", func(s *AliasScript) { s.LogFile = "" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mutate(&s)
			text, err := s.Render()
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, text, "VIP='10.0.0.100'")
			assert.NotRegexp(t, `@[A-Z]+@`, text, "every placeholder replaced")
		})
	}
}

// TestAliasScriptMovesVIP runs the rendered script with sh, curl and jq
// against the API simulator on a loopback port: the VIP moves from a to b
// and every other alias of both servers stays.
func TestAliasScriptMovesVIP(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	sim := cloudapitest.New(cloudapitest.WithTokens(testToken), cloudapitest.WithActionDelay(300*time.Millisecond))
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	addr := netip.MustParseAddr
	netID := sim.AddNetwork(cloudapitest.Network{IPRange: netip.MustParsePrefix("10.0.0.0/16"), Subnets: []cloudapitest.Subnet{{IPRange: netip.MustParsePrefix("10.0.0.0/24")}}})
	a := sim.AddServer(cloudapitest.Server{PrivateNets: []cloudapitest.PrivateNet{{NetworkID: netID, IP: addr("10.0.0.2"), AliasIPs: []netip.Addr{addr("10.0.0.50"), addr("10.0.0.100")}}}})
	b := sim.AddServer(cloudapitest.Server{PrivateNets: []cloudapitest.PrivateNet{{NetworkID: netID, IP: addr("10.0.0.3"), AliasIPs: []netip.Addr{addr("10.0.0.60")}}}})

	dir := t.TempDir()
	headers := filepath.Join(dir, "headers")
	require.NoError(t, os.WriteFile(headers, []byte("Authorization: Bearer "+testToken+"\n"), 0o600))
	logFile := filepath.Join(dir, "notify.log")
	text, err := AliasScript{Endpoint: srv.URL + "/v1", HeaderFile: headers, NetworkID: netID, ServerID: b,
		VIP: addr("10.0.0.100"), LogFile: logFile, PollInterval: 100 * time.Millisecond}.Render()
	require.NoError(t, err)
	script := filepath.Join(dir, "notify.sh")
	require.NoError(t, os.WriteFile(script, []byte(text), 0o700))

	out, err := exec.CommandContext(t.Context(), "sh", script, "master").CombinedOutput()
	log, _ := os.ReadFile(logFile)
	require.NoError(t, err, "output %s, log:\n%s", out, log)
	assert.Equal(t, []netip.Addr{addr("10.0.0.50")}, sim.AliasIPs(a, netID))
	assert.Equal(t, []netip.Addr{addr("10.0.0.60"), addr("10.0.0.100")}, sim.AliasIPs(b, netID))
	assert.True(t, strings.HasSuffix(strings.TrimSpace(string(log)), "alias done"), "log:\n%s", log)
	var changes int
	for _, r := range sim.RequestLog() {
		if strings.HasSuffix(r.Path, "/actions/change_alias_ips") {
			changes++
		}
	}
	assert.Equal(t, 2, changes, "remove from a, then add to b")

	// Run again on b: it holds the VIP already, nothing is lost or doubled.
	out, err = exec.CommandContext(t.Context(), "sh", script, "master").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, []netip.Addr{addr("10.0.0.60"), addr("10.0.0.100")}, sim.AliasIPs(b, netID))
}
