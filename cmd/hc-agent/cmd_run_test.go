package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hc-agent/hc-agent/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// notifySocket listens like systemd on a NOTIFY_SOCKET datagram socket and
// returns the messages the daemon sends.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcagent-run") // short: socket paths are limited
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 64)
	done := make(chan struct{})
	go func() { // exits when conn is closed in Cleanup
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return msgs
}

// TestRunBlocksUntilCancelled runs the real daemon against the fake metadata
// service on loopback, with private networks and floating IPs off and no
// listener, so that it neither contacts 169.254.169.254 or the API nor
// changes this machine's network: it reports READY=1 to systemd and runs
// until cancelled. The token is set (to check that it is redacted), so the
// API endpoint points at a closed loopback port as a second guard: with
// floating IPs on, the daemon would otherwise call the real API.
func TestRunBlocksUntilCancelled(t *testing.T) {
	md := metadatatest.New(t)
	md.SetSummary(metadata.Summary{InstanceID: 42, Hostname: "web-1"})
	cfg := writeFile(t, "config.yaml", "log:\n  level: debug\nstate_dir: "+t.TempDir()+"\nruntime_dir: "+t.TempDir()+
		"\nmetadata:\n  endpoint: "+md.URL()+"\napi:\n  endpoint: http://127.0.0.1:1/v1\nprivate_networks:\n  enabled: false\n"+
		"floating_ips:\n  enabled: false\nmetrics:\n  listen: \"off\"\n", 0o644)
	tests := []struct {
		name      string
		args      []string
		checkLogs func(t *testing.T, logs string)
	}{
		{
			name: "text logs",
			args: []string{"--config", cfg, "run"},
			checkLogs: func(t *testing.T, logs string) {
				assert.Contains(t, logs, `msg="hc-agent starting"`)
				assert.Contains(t, logs, "api_token=[redacted]")
				assert.Contains(t, logs, "msg=ready")
				assert.Contains(t, logs, `msg="hc-agent stopping" reason="context canceled"`)
			},
		},
		{
			name: "json logs from the flag after the command",
			args: []string{"run", "--config", cfg, "--log-format", "json"},
			checkLogs: func(t *testing.T, logs string) {
				lines := strings.Split(strings.TrimSpace(logs), "\n")
				require.GreaterOrEqual(t, len(lines), 2)
				for _, l := range lines {
					var m map[string]any
					require.NoError(t, json.Unmarshal([]byte(l), &m), l)
				}
				var first map[string]any
				require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
				assert.Equal(t, "hc-agent starting", first["msg"])
				assert.Equal(t, "[redacted]", first["api_token"])
				assert.Equal(t, cfg, first["config"])
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs := notifySocket(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out, errb syncBuffer
			env := newEnv(&out, &errb, func(k string) string {
				return map[string]string{"HCLOUD_TOKEN": secretToken}[k]
			})
			done := make(chan int, 1)
			go func() { done <- execute(ctx, env, tc.args) }()
		wait:
			for {
				select {
				case m := <-msgs:
					if m == "READY=1" {
						break wait
					}
				case code := <-done:
					t.Fatalf("run returned %d before it was cancelled; stderr: %s", code, errb.String())
				}
			}
			cancel()
			assert.Equal(t, 0, <-done)
			assert.Empty(t, out.String())
			assert.NotContains(t, errb.String(), secretToken)
			tc.checkLogs(t, errb.String())
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunRefusesABadConfig(t *testing.T) {
	cfg := writeFile(t, "config.yaml", "groups:\n  - name: web\n", 0o644)
	r := runCLI(t, nil, "run", "--config", cfg)
	assert.Equal(t, config.ExitCode, r.code, "EX_CONFIG: the unit does not restart")
	assert.Contains(t, r.stderr, "groups[0].floating_ips: floating_ips, floating_ip_selector or private_ips is required\n")
	assert.Contains(t, r.stderr, "hc-agent: config "+cfg+": 4 problems\n")
	assert.NotContains(t, r.stderr, "hc-agent starting")
}
