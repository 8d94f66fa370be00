package floatingip

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptedProbe returns results from a script, one per call, then repeats the
// last one.
type scriptedProbe struct {
	mu     sync.Mutex
	script []bool
	calls  int
}

func (p *scriptedProbe) probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := min(p.calls, len(p.script)-1)
	p.calls++
	if p.script[i] {
		return nil
	}
	return errors.New("probe failed")
}

func TestHealthCheckerRiseFall(t *testing.T) {
	const T, F = true, false
	tests := []struct {
		name       string
		rise, fall int
		script     []bool
		// want is the state after each probe.
		want []bool
	}{
		{"first success is healthy at once", 2, 2, []bool{T, T}, []bool{T, T}},
		{"first failure is unhealthy at once", 2, 2, []bool{F, F}, []bool{F, F}},
		{"single failure below fall", 2, 2, []bool{T, F, T, F, T}, []bool{T, T, T, T, T}},
		{"fall after two failures", 2, 2, []bool{T, F, F, T}, []bool{T, T, F, F}},
		{"rise after two successes", 2, 2, []bool{F, T, F, T, T, T}, []bool{F, F, F, F, T, T}},
		{"rise 3 fall 1", 3, 1, []bool{T, F, T, T, T}, []bool{T, F, F, F, T}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &scriptedProbe{script: tt.script}
				h := NewHealthChecker(p.probe, withHealthDefaults(HealthConfig{Interval: time.Second, Rise: tt.rise, Fall: tt.fall}))
				var got []bool
				ctx, cancel := context.WithCancel(t.Context())
				var changes []bool
				done := make(chan struct{})
				go func() {
					defer close(done)
					h.Run(ctx, func(b bool) { changes = append(changes, b) })
				}()
				for i := range tt.want {
					if i > 0 {
						time.Sleep(time.Second) // fake time inside the bubble
					}
					synctest.Wait()
					got = append(got, h.Healthy())
				}
				cancel()
				<-done
				assert.Equal(t, tt.want, got)
				// Every change was reported, starting with the first probe.
				var wantChanges []bool
				for i, s := range tt.want {
					if i == 0 || s != tt.want[i-1] {
						wantChanges = append(wantChanges, s)
					}
				}
				assert.Equal(t, wantChanges, changes)
			})
		})
	}
}

func TestHealthCheckerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		h := NewHealthChecker(slow, withHealthDefaults(HealthConfig{Timeout: 300 * time.Millisecond}))
		start := time.Now()
		healthy, _ := h.Check(t.Context())
		assert.False(t, healthy)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, h.LastError(), context.DeadlineExceeded)
	})
}

func TestProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	tests := []struct {
		name    string
		cfg     HealthConfig
		wantErr bool
	}{
		{"none", HealthConfig{}, false},
		{"http 200", HealthConfig{Type: "http", Target: srv.URL + "/ok"}, false},
		{"http 302", HealthConfig{Type: "http", Target: srv.URL + "/redirect"}, false},
		{"http 503", HealthConfig{Type: "http", Target: srv.URL + "/down"}, true},
		{"tcp open", HealthConfig{Type: "tcp", Target: ln.Addr().String()}, false},
		{"tcp closed", HealthConfig{Type: "tcp", Target: closedAddr}, true},
		{"command true", HealthConfig{Type: "command", Command: []string{"true"}}, false},
		{"command false", HealthConfig{Type: "command", Command: []string{"false"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProbe(tt.cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err = p(ctx)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	for _, bad := range []HealthConfig{{Type: "http"}, {Type: "tcp"}, {Type: "command"}, {Type: "icmp"}} {
		_, err := NewProbe(bad)
		assert.Error(t, err, "type %q", bad.Type)
	}
}
