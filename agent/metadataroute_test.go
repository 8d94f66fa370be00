package agent

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/metadata"
)

// TestRunChecksMetadataRouteBeforeEveryRead: the black-hole check needs no
// metadata, so it runs before the first read and after every failed one;
// the black hole is in the metric before metadata ever answers, and the
// read's error names the route (issue 13).
func TestRunChecksMetadataRouteBeforeEveryRead(t *testing.T) {
	const hint = "a route sends 169.254.169.254 via 10.0.0.1 dev enp7s0 (proto dhcp); set private_networks.pin_metadata_route: true"
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	md := &fakeMetadata{errs: []error{errors.New("i/o timeout"), errors.New("i/o timeout")}, sum: metadata.Summary{InstanceID: 7}}
	reg := prometheus.NewRegistry()
	var (
		readsBefore []int
		blackholed  []float64
	)
	ready := make(chan struct{})
	var logs syncBuffer
	a, err := New(cfg, Options{
		Log:        slog.New(slog.NewTextHandler(&logs, nil)),
		Registry:   reg,
		RetryDelay: time.Millisecond,
		Notify: func(s string) error {
			if s == "READY=1" {
				close(ready)
			}
			return nil
		},
		Watchdog: func() (time.Duration, error) { return 0, nil },
		CheckMetadataRoute: func(context.Context) (bool, string) {
			md.mu.Lock()
			readsBefore = append(readsBefore, md.calls)
			md.mu.Unlock()
			if len(readsBefore) > 1 {
				// The metric was set by the first check, before any read.
				blackholed = append(blackholed, gauge(t, reg, "hcagent_metadata_blackholed"))
			}
			return true, hint
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, md, func(context.Context, metadata.Summary) (Components, error) { return Components{}, nil })
	}()
	<-ready
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, []int{0, 1, 2}, readsBefore, "metadata reads done before each check")
	assert.Equal(t, []float64{1, 1}, blackholed)
	assert.Contains(t, logs.String(), "i/o timeout; "+hint)
	assert.Equal(t, 1, strings.Count(logs.String(), "metadata black hole: a route sends 169.254.169.254"), "logged once")
}

// gauge reads the value of an unlabelled gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
