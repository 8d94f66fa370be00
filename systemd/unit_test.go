package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
)

// readUnit returns the directives of hc-agent.service as key -> values in
// file order (keys such as SystemCallFilter may repeat).
func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("hc-agent.service")
	require.NoError(t, err)
	defer f.Close()
	kv := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line without '=': %q", line)
		kv[k] = append(kv[k], v)
	}
	require.NoError(t, sc.Err())
	return kv
}

// TestUnitDirectives pins what the issue asks of the unit: notify with a
// watchdog, state and runtime directories, and the hardening.
func TestUnitDirectives(t *testing.T) {
	kv := readUnit(t)
	want := map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"ExecStart":                "/usr/bin/hc-agent run",
		"WatchdogSec":              "30s",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": strconv.Itoa(config.ExitCode), // EX_CONFIG, what hc-agent exits with
		"ExecReload":               "/usr/bin/hc-agent reload",
		"StateDirectory":           "hc-agent",
		"RuntimeDirectory":         "hc-agent",
		"ConfigurationDirectory":   "hc-agent",
		"CapabilityBoundingSet":    "CAP_NET_ADMIN",
		"AmbientCapabilities":      "CAP_NET_ADMIN",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"WantedBy":                 "multi-user.target",
		// The same as timerSlack in cmd/hc-agent (issue 14).
		"TimerSlackNSec": "1ms",
	}
	for k, v := range want {
		t.Run(k, func(t *testing.T) {
			assert.Equal(t, []string{v}, kv[k])
		})
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the unit.
// systemd-analyze only warns (exit 0) on unknown keys and bad values, so any
// output on stderr fails the test too. verify also insists that ExecStart
// exists, so the test points it at a stand-in executable.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): skipping the unit lint")
	}
	unit, err := os.ReadFile("hc-agent.service")
	require.NoError(t, err)
	dir := t.TempDir()
	bin := filepath.Join(dir, "hc-agent")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	unit = bytes.ReplaceAll(unit, []byte("/usr/bin/hc-agent"), []byte(bin))
	require.True(t, bytes.Contains(unit, []byte("ExecStart="+bin+" run")), "ExecStart not rewritten")
	path := filepath.Join(dir, "hc-agent.service")
	require.NoError(t, os.WriteFile(path, unit, 0o644))

	for _, tc := range []struct {
		name    string
		extra   string
		wantBad bool
	}{
		{name: "unit as shipped"},
		// The lint must be able to fail: an unknown key only warns.
		{name: "unknown key is caught", extra: "\n[Service]\nNoSuchDirective=1\n", wantBad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.extra != "" {
				sub := filepath.Join(dir, "bad")
				require.NoError(t, os.MkdirAll(sub, 0o755))
				p = filepath.Join(sub, "hc-agent.service")
				require.NoError(t, os.WriteFile(p, append(append([]byte{}, unit...), tc.extra...), 0o644))
			}
			var stderr bytes.Buffer
			cmd := exec.Command(analyze, "verify", "--man=no", p)
			cmd.Stderr = &stderr
			cmd.Stdout = &stderr
			runErr := cmd.Run()
			bad := runErr != nil || stderr.Len() > 0
			if tc.wantBad {
				assert.True(t, bad, "systemd-analyze accepted a broken unit")
				return
			}
			assert.False(t, bad, "systemd-analyze verify: %v\n%s", runErr, stderr.String())
		})
	}
}
