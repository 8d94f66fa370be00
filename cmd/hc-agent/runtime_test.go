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

func TestLimitProcs(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	for _, tt := range []struct {
		name string
		env  string
		want int
	}{
		{name: "unset: one", env: "", want: 1},
		{name: "set: left to the runtime", env: "3", want: was},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GOMAXPROCS(was)
			limitProcs(func(k string) string {
				if k == "GOMAXPROCS" {
					return tt.env
				}
				return ""
			})
			assert.Equal(t, tt.want, runtime.GOMAXPROCS(0))
		})
	}
}

func TestTuneGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	for _, tt := range []struct {
		name string
		env  string
		want int
	}{
		{name: "unset: hc-agent's", env: "", want: gcPercent},
		{name: "set: left to the runtime", env: "200", want: 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			tuneGC(func(k string) string {
				if k == "GOGC" {
					return tt.env
				}
				return ""
			})
			assert.Equal(t, tt.want, debug.SetGCPercent(100))
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
