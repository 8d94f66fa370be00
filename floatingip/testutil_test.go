package floatingip

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/config"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger logs to stderr when HCAGENT_TEST_LOG is set (memberlist logs
// from timers after a test ended, so t.Output cannot be used).
func testLogger(_ any) *slog.Logger {
	if os.Getenv("HCAGENT_TEST_LOG") == "" {
		return discardLogger()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// withConfigDefaults fills the fields a test leaves zero with the values
// the daemon passes (package config's defaults), as the wiring does: the
// group itself replaces nothing. Priority stays as given (0 is valid).
func withConfigDefaults(c GroupConfig) GroupConfig {
	orD := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	orI := func(i *int, def int) {
		if *i == 0 {
			*i = def
		}
	}
	if c.Mode == "" {
		c.Mode = config.DefaultGroupMode
	}
	orI(&c.ExpectedSize, 1)
	orI(&c.MaxMovesPerMinute, config.DefaultGroupMaxMovesPerMinute)
	orD(&c.Backoff, config.DefaultGroupBackoff)
	orD(&c.ActionTimeout, config.DefaultGroupActionTimeout)
	orD(&c.RefreshInterval, config.DefaultGroupRefreshInterval)
	orD(&c.SecondPathTTL, config.DefaultGroupSecondPathTTL)
	orD(&c.StartupDelay, config.DefaultGroupStartupDelay)
	orD(&c.HandoverTimeout, config.DefaultGroupHandoverTimeout)
	if !c.IPv6Host.IsValid() {
		c.IPv6Host = netip.MustParseAddr(config.DefaultIPv6Host)
	}
	c.Health = withHealthDefaults(c.Health)
	return c
}

func withHealthDefaults(h HealthConfig) HealthConfig {
	if h.Interval == 0 {
		h.Interval = config.DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = config.DefaultHealthTimeout
	}
	if h.Rise == 0 {
		h.Rise = config.DefaultHealthRise
	}
	if h.Fall == 0 {
		h.Fall = config.DefaultHealthFall
	}
	return h
}

// testIPv6Host is config's default ipv6_host.
var testIPv6Host = netip.MustParseAddr(config.DefaultIPv6Host)

// newTestManager is NewManager with the timings a test leaves zero set as
// the daemon sets them (api.poll_interval and config.DefaultAPIRetryMin).
func newTestManager(t testing.TB, cfg ManagerConfig, cloud Cloud, host Host, log *slog.Logger) *Manager {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = config.DefaultAPIPollInterval
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = config.DefaultAPIRetryMin
	}
	m, err := NewManager(cfg, cloud, host, log)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
