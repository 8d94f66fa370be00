package main

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestTuneRuntime: GOMAXPROCS 1, GOGC gcPercent and no heap profile, each
// unless the environment sets it.
func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	rate := runtime.MemProfileRate
	t.Cleanup(func() { runtime.GOMAXPROCS(procs); debug.SetGCPercent(gc); runtime.MemProfileRate = rate })
	const defaultRate = 512 << 10
	for _, tt := range []struct {
		name      string
		env       map[string]string
		wantProcs int
		wantGC    int
		wantRate  int
	}{
		{name: "unset: hc-agent's", wantProcs: 1, wantGC: gcPercent},
		{name: "GOMAXPROCS set: left to the runtime", env: map[string]string{"GOMAXPROCS": "3"}, wantProcs: procs, wantGC: gcPercent},
		{name: "GOGC set: left to the runtime", env: map[string]string{"GOGC": "200"}, wantProcs: 1, wantGC: 100},
		{name: "both set", env: map[string]string{"GOMAXPROCS": "3", "GOGC": "200"}, wantProcs: procs, wantGC: 100},
		{name: "GODEBUG sets memprofilerate: left to the runtime", env: map[string]string{"GODEBUG": "gctrace=1,memprofilerate=1"},
			wantProcs: 1, wantGC: gcPercent, wantRate: defaultRate},
		{name: "GODEBUG sets other things", env: map[string]string{"GODEBUG": "gctrace=1,xmemprofilerate=1,memprofilerate"},
			wantProcs: 1, wantGC: gcPercent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GOMAXPROCS(procs)
			debug.SetGCPercent(100)
			runtime.MemProfileRate = defaultRate
			tuneRuntime(func(k string) string { return tt.env[k] })
			assert.Equal(t, tt.wantProcs, runtime.GOMAXPROCS(0))
			assert.Equal(t, tt.wantGC, debug.SetGCPercent(100))
			assert.Equal(t, tt.wantRate, runtime.MemProfileRate)
		})
	}
}

// TestTrimAfter: the start-up memory is released once, trimDelay after
// ready, and not at all when the daemon stops before.
func TestTrimAfter(t *testing.T) {
	for _, tt := range []struct {
		name     string
		stop     bool // the daemon stops just before the delay ends
		released bool
	}{
		{name: "released after the delay", released: true},
		{name: "stopped first", stop: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				trimAfter(ctx, log, trimDelay)
				time.Sleep(trimDelay - time.Millisecond)
				synctest.Wait()
				assert.NotContains(t, logs.String(), "released", "not before the delay")
				if tt.stop {
					cancel()
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if tt.released {
					assert.Contains(t, logs.String(), "released start-up memory")
				} else {
					assert.Empty(t, logs.String())
				}
			})
		})
	}
}
