package floatingip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"time"
)

// Probe runs one health probe; nil means healthy. It must honour ctx.
type Probe func(ctx context.Context) error

// HealthConfig configures a health check. Every timing must be set (the
// config file's defaults: interval 1s, timeout 500ms, rise 2, fall 2).
type HealthConfig struct {
	// Type is "none" (or ""), "http", "tcp" or "command".
	Type string
	// Target is the URL for http, host:port for tcp.
	Target string
	// Command is the argv for command.
	Command  []string
	Interval time.Duration
	Timeout  time.Duration
	// Rise is the number of consecutive successes that make an unhealthy
	// member healthy; Fall the number of consecutive failures that make a
	// healthy member unhealthy.
	Rise int
	Fall int
}

// validate checks the timings; it replaces nothing (defaults live in
// package config).
func (c HealthConfig) validate() error {
	if c.Interval <= 0 || c.Timeout <= 0 || c.Rise < 1 || c.Fall < 1 {
		return fmt.Errorf("health check: interval %v and timeout %v must be positive, rise %d and fall %d at least 1",
			c.Interval, c.Timeout, c.Rise, c.Fall)
	}
	return nil
}

// NewProbe returns the probe for the configured check type. The "none" check
// is always healthy.
func NewProbe(c HealthConfig) (Probe, error) {
	switch c.Type {
	case "", "none":
		return func(context.Context) error { return nil }, nil
	case "http":
		if c.Target == "" {
			return nil, errors.New("http health check: empty target")
		}
		return HTTPProbe(c.Target), nil
	case "tcp":
		if c.Target == "" {
			return nil, errors.New("tcp health check: empty target")
		}
		return TCPProbe(c.Target), nil
	case "command":
		if len(c.Command) == 0 {
			return nil, errors.New("command health check: empty command")
		}
		return CommandProbe(c.Command), nil
	default:
		return nil, fmt.Errorf("health check type %q: unknown", c.Type)
	}
}

// HTTPProbe returns a probe that GETs url and accepts a 2xx or 3xx status.
// Redirects are not followed and proxies are not used.
func HTTPProbe(url string) Probe {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("http health check %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("http health check %s: %w", url, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http health check %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// TCPProbe returns a probe that connects to addr (host:port).
func TCPProbe(addr string) Probe {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp health check %s: %w", addr, err)
		}
		return c.Close()
	}
}

// CommandProbe returns a probe that runs argv and accepts exit status 0.
func CommandProbe(argv []string) Probe {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("command health check %s: %w", argv[0], err)
		}
		return nil
	}
}

// HealthChecker runs a probe every interval and applies rise and fall.
type HealthChecker struct {
	probe Probe
	cfg   HealthConfig

	mu      sync.Mutex
	healthy bool
	known   bool
	ok, bad int
	lastErr error
}

// NewHealthChecker returns a checker for probe. The first probe result sets
// the initial state directly (a restarted holder that is healthy stays
// healthy); rise and fall apply to every later transition.
func NewHealthChecker(probe Probe, c HealthConfig) *HealthChecker {
	return &HealthChecker{probe: probe, cfg: c}
}

// Healthy reports the current state.
func (h *HealthChecker) Healthy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.healthy
}

// LastError returns the last probe error, or nil.
func (h *HealthChecker) LastError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

// Check runs one probe with the timeout, updates the state and reports
// whether the state changed.
func (h *HealthChecker) Check(ctx context.Context) (healthy, changed bool) {
	pctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	err := h.probe(pctx)
	cancel()
	return h.record(err)
}

func (h *HealthChecker) record(err error) (healthy, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	was := h.healthy
	if err == nil {
		h.ok, h.bad = h.ok+1, 0
	} else {
		h.ok, h.bad = 0, h.bad+1
	}
	switch {
	case !h.known:
		h.known = true
		h.healthy = err == nil
		return h.healthy, true
	case !h.healthy && h.ok >= h.cfg.Rise:
		h.healthy = true
	case h.healthy && h.bad >= h.cfg.Fall:
		h.healthy = false
	}
	return h.healthy, h.healthy != was
}

// Run probes every interval until ctx is done, calling onChange (from Run's
// goroutine) after every state change, including the first probe. It returns
// when ctx is done.
func (h *HealthChecker) Run(ctx context.Context, onChange func(healthy bool)) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		if healthy, changed := h.Check(ctx); changed && onChange != nil && ctx.Err() == nil {
			onChange(healthy)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
