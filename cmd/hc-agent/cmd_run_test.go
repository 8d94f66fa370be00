package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunBlocksUntilCancelled(t *testing.T) {
	cfg := writeFile(t, "config.yaml", "log:\n  level: debug\n", 0o644)
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
				assert.Contains(t, logs, `msg="hc-agent stopping" reason="context canceled"`)
			},
		},
		{
			name: "json logs from the flag after the command",
			args: []string{"run", "--config", cfg, "--log-format", "json"},
			checkLogs: func(t *testing.T, logs string) {
				lines := strings.Split(strings.TrimSpace(logs), "\n")
				require.Len(t, lines, 2)
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
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				var out, errb bytes.Buffer
				env := newEnv(&out, &errb, func(k string) string {
					return map[string]string{"HCLOUD_TOKEN": secretToken}[k]
				})
				done := make(chan int)
				go func() { done <- execute(ctx, env, tc.args) }()

				synctest.Wait() // run is now blocked on ctx
				select {
				case code := <-done:
					t.Fatalf("run returned %d before it was cancelled; stderr: %s", code, errb.String())
				default:
				}
				cancel()
				assert.Equal(t, 0, <-done)
				assert.Empty(t, out.String())
				assert.NotContains(t, errb.String(), secretToken)
				tc.checkLogs(t, errb.String())
			})
		})
	}
}

func TestRunRefusesABadConfig(t *testing.T) {
	cfg := writeFile(t, "config.yaml", "groups:\n  - name: web\n", 0o644)
	r := runCLI(t, nil, "run", "--config", cfg)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "groups[0].floating_ips: floating_ips or floating_ip_selector is required\n")
	assert.Contains(t, r.stderr, "hc-agent: config "+cfg+": 4 problems\n")
	assert.NotContains(t, r.stderr, "hc-agent starting")
}
