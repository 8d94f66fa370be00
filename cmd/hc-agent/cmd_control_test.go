package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
)

// drainDaemon is a stateful control.Daemon for the CLI tests.
type drainDaemon struct {
	mu        sync.Mutex
	calls     []string
	reloadErr error
}

func (d *drainDaemon) record(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
}

func (d *drainDaemon) Status(context.Context) any {
	return map[string]any{"version": "v-test", "groups": []any{map[string]any{"name": "web", "drained": true, "role": "stepping-down"}}}
}

func (d *drainDaemon) Handover(_ context.Context, groups []string) error {
	for _, g := range groups {
		if g != "web" {
			return &control.NotFoundError{Group: g}
		}
	}
	d.record("handover " + join(groups))
	return nil
}

func (d *drainDaemon) Resume(_ context.Context, groups []string) error {
	d.record("resume " + join(groups))
	return nil
}

func (d *drainDaemon) Reload(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "reload")
	return d.reloadErr
}

func join(groups []string) string {
	if len(groups) == 0 {
		return "(all)"
	}
	out := groups[0]
	for _, g := range groups[1:] {
		out += "," + g
	}
	return out
}

func TestControlCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the control socket serves root only; run as root")
	}
	runDir := filepath.Join(t.TempDir(), "run")
	cfg := writeFile(t, "config.yaml", "runtime_dir: "+runDir+"\n", 0o600)
	d := &drainDaemon{}
	srv, err := control.Listen(control.Path(runDir), d, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})

	tests := []struct {
		name       string
		args       []string
		reloadErr  error
		wantCode   int
		wantStdout string
		wantStderr string
		wantCall   string
	}{
		{name: "handover every group", args: []string{"handover"}, wantStdout: "handed over; run 'hc-agent handover --resume' to take part again\n", wantCall: "handover (all)"},
		{name: "handover one group", args: []string{"handover", "web"}, wantStdout: "handed over", wantCall: "handover web"},
		{name: "handover unknown group", args: []string{"handover", "nope"}, wantCode: 1, wantStderr: "hc-agent: handover: no group \"nope\"\n"},
		{name: "resume", args: []string{"handover", "--resume", "web"}, wantStdout: "resumed\n", wantCall: "resume web"},
		{name: "reload", args: []string{"reload"}, wantStdout: "reloaded\n", wantCall: "reload"},
		{name: "status over the control socket", args: []string{"status", "--json"}, wantStdout: `"version": "v-test"`},
		{name: "status shows drained", args: []string{"status"}, wantStdout: "DRAINED"},
		{name: "reload refused", args: []string{"reload"}, reloadErr: errors.New("config " + cfg + ": 1 problem: log.colour: unknown key"),
			wantCode: 1, wantStderr: "hc-agent: reload: config " + cfg + ": 1 problem: log.colour: unknown key\n", wantCall: "reload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.mu.Lock()
			d.calls, d.reloadErr = nil, tt.reloadErr
			d.mu.Unlock()
			r := runCLI(t, nil, append(tt.args, "--config", cfg)...)
			assert.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stdout, tt.wantStdout)
			if tt.wantStderr != "" {
				assert.Equal(t, tt.wantStderr, r.stderr)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if tt.wantCall != "" {
				assert.Equal(t, []string{tt.wantCall}, d.calls)
			}
		})
	}
}

func TestControlCommandsNotRunning(t *testing.T) {
	runDir := t.TempDir()
	cfg := writeFile(t, "config.yaml", "runtime_dir: "+runDir+"\n", 0o600)
	for _, args := range [][]string{{"reload"}, {"handover"}, {"handover", "--resume"}} {
		t.Run(args[0], func(t *testing.T) {
			r := runCLI(t, nil, append(args, "--config", cfg)...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "hc-agent is not running (no daemon on "+control.Path(runDir)+")")
		})
	}
}

// TestSetLogLevel: a reload's new log.level applies to the running
// logger, unless --log-level set it on the command line.
func TestSetLogLevel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flag      string
		wantDebug bool
	}{
		{name: "from the config", wantDebug: true},
		{name: "the flag wins", flag: "info", wantDebug: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			env := newEnv(&out, &out, func(string) string { return "" })
			env.logLevel = tc.flag
			log := env.logger(config.Default())
			log.Debug("before")
			require.NoError(t, env.setLogLevel("debug"))
			log.Debug("after")
			assert.NotContains(t, out.String(), "before")
			assert.Equal(t, tc.wantDebug, strings.Contains(out.String(), "after"), out.String())
		})
	}
}
