package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"version":"v1","instance_id":42,"hostname":"web-1","ready":true,"status":"running; netconf ok","components":{},"groups":[]}` + "\n"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		config   string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "table", config: "metrics:\n  listen: " + addr + "\n", wantOut: "server    web-1 (instance 42)"},
		{name: "json", config: "metrics:\n  listen: " + addr + "\n", args: []string{"--json"}, wantOut: `"instance_id":42`},
		{name: "addr flag", config: "metrics:\n  listen: off\n", args: []string{"--addr", addr}, wantOut: "ready     yes"},
		{name: "not running", config: "metrics:\n  listen: " + closed + "\n", wantCode: 1, wantErr: "hc-agent: hc-agent is not running (nothing listens on " + closed + ")"},
		{name: "listener off", config: "metrics:\n  listen: off\n", wantCode: 1, wantErr: "hc-agent: status: the daemon's listener is off (metrics.listen: off)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, "config.yaml", tt.config, 0o600)
			r := runCLI(t, nil, append([]string{"--config", cfg, "status"}, tt.args...)...)
			assert.Equal(t, tt.wantCode, r.code, r.stderr)
			assert.Contains(t, r.stdout, tt.wantOut)
			if tt.wantErr != "" {
				assert.Contains(t, r.stderr, tt.wantErr)
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			}
		})
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":               "127.0.0.1:9183",
		"127.0.0.1:9183": "127.0.0.1:9183",
		":9100":          "127.0.0.1:9100",
		"0.0.0.0:9100":   "127.0.0.1:9100",
		"[::]:9100":      "127.0.0.1:9100",
		"10.0.0.2:9100":  "10.0.0.2:9100",
	} {
		assert.Equal(t, want, dialAddr(in), in)
	}
}
