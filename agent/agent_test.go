package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
)

// fakeMetadata fails with errs in turn, then returns sum.
type fakeMetadata struct {
	mu    sync.Mutex
	errs  []error
	sum   metadata.Summary
	calls int
}

func (f *fakeMetadata) Summary(ctx context.Context) (metadata.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return metadata.Summary{}, err
	}
	return f.sum, nil
}

// fakeLoop is a reconcile loop driven by the test: every Report sent on
// runs is passed to the agent, and done is signalled after it.
type fakeLoop struct {
	report   func(Report)
	runs     chan Report
	done     chan struct{}
	fatal    chan error
	triggers chan struct{}
}

func newFakeLoop(report func(Report)) *fakeLoop {
	return &fakeLoop{report: report, runs: make(chan Report), done: make(chan struct{}), fatal: make(chan error), triggers: make(chan struct{}, 16)}
}

func (f *fakeLoop) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-f.fatal:
			return err
		case r := <-f.runs:
			f.report(r)
			f.done <- struct{}{}
		}
	}
}

func (f *fakeLoop) Trigger() { f.triggers <- struct{}{} }

// reconcile makes the loop report r and waits until the agent handled it.
func (f *fakeLoop) reconcile(r Report) {
	f.runs <- r
	<-f.done
}

type fakeGroup struct {
	name      string
	handovers chan struct{}
}

func (g *fakeGroup) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (g *fakeGroup) Name() string                  { return g.name }
func (g *fakeGroup) Role() string                  { return "holder" }
func (g *fakeGroup) Status() any                   { return map[string]any{"name": g.name, "role": "holder"} }
func (g *fakeGroup) Handover(ctx context.Context) error {
	g.handovers <- struct{}{}
	return nil
}

// notifySocket listens on a real NOTIFY_SOCKET datagram socket, like systemd
// does, and returns the channel of received messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "hcagent-notify")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 100)
	done := make(chan struct{})
	// Exits when the socket is closed in Cleanup.
	go func() {
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

// next returns the next notify message, failing after a generous timeout
// (the timeout only catches a hang; it does not synchronise anything).
func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no sd_notify message")
		return ""
	}
}

func expectMsgs(t *testing.T, msgs <-chan string, want ...string) {
	t.Helper()
	var got []string
	for range want {
		got = append(got, next(t, msgs))
	}
	assert.Equal(t, want, got)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

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

// TestRunNotifyAndSnapshotState boots the agent with state left by another
// server (instance ID 1) on server 2 and drives the systemd notify protocol
// over a real NOTIFY_SOCKET: STATUS while waiting for metadata, WATCHDOG=1
// from each reconcile, READY=1 only after the first successful reconcile,
// STOPPING=1 and a group handover on shutdown.
func TestRunNotifyAndSnapshotState(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "3600000000") // enabled, but the keep-busy ticker never fires here
	t.Setenv("WATCHDOG_PID", "")

	stateDir := t.TempDir()
	writeFile(t, filepath.Join(stateDir, statedir.StateFile), `{"instance_id": 1}`)
	writeFile(t, filepath.Join(stateDir, "netconf-owned.json"), `{"addresses": ["10.0.0.2/32"]}`)
	writeFile(t, filepath.Join(stateDir, "groups", "web.json"), `{}`)

	cfg := config.Config{StateDir: stateDir, Metrics: config.Metrics{Listen: "127.0.0.1:0"}}
	cfg.API.Token = "secret-token"
	cfg.Groups = []config.Group{{Name: "web"}}

	md := &fakeMetadata{errs: []error{errors.New("boom"), errors.New("boom")}, sum: metadata.Summary{InstanceID: 2, Hostname: "clone"}}
	loops := make(chan *fakeLoop, 1)
	group := &fakeGroup{name: "web", handovers: make(chan struct{}, 1)}
	groupCalls, releaseGroups := make(chan struct{}, 1), make(chan struct{})
	var logs syncBuffer
	readies := make(chan struct{}, 2)
	a, err := New(cfg, Options{
		Log:        slog.New(slog.NewTextHandler(&logs, nil)),
		Build:      metrics.BuildInfo{Version: "v9"},
		RetryDelay: time.Millisecond,
		OnReady:    func() { readies <- struct{}{} },
	})
	require.NoError(t, err)
	wire := func(ctx context.Context, sum metadata.Summary) (Components, error) {
		// Nothing from the build server may reach a component.
		_, err := os.Stat(filepath.Join(cfg.StateDir, "netconf-owned.json"))
		assert.ErrorIs(t, err, os.ErrNotExist, "build server's ownership record still there")
		l := newFakeLoop(a.Report)
		loops <- l
		return Components{
			Netconf:    l,
			FloatingIP: newFakeLoop(a.Report),
			Groups: func(ctx context.Context) ([]Group, error) {
				groupCalls <- struct{}{}
				<-releaseGroups
				return []Group{group}, nil
			},
		}, nil
	}

	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx, md, wire) }()

	expectMsgs(t, msgs,
		"STATUS=waiting for the metadata service",
		"STATUS=waiting for the metadata service: boom",
		"WATCHDOG=1",
		"WATCHDOG=1",
		"STATUS=applying configuration",
	)
	loop := <-loops

	// State: the old server's files are gone, the record names this server.
	st, ok, err := statedir.LoadState(stateDir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(2), st.InstanceID)
	ents, err := statedir.StateEntries(stateDir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(stateDir, statedir.StateFile)}, ents)
	assert.Contains(t, logs.String(), "state from another server discarded")
	assert.Contains(t, logs.String(), "state_instance_id=1 instance_id=2")

	loop.reconcile(Report{Component: ComponentNetconf, Err: errors.New("nl boom")})
	expectMsgs(t, msgs, "WATCHDOG=1", "STATUS=applying configuration; netconf failing: nl boom")
	assert.Error(t, a.Health())
	select {
	case <-groupCalls:
		t.Fatal("failover groups created before the private networks were configured")
	default:
	}

	// Groups are created once private networks are configured: their
	// gossip binds to a private address.
	loop.reconcile(Report{Component: ComponentNetconf, Changes: 3, Duration: time.Millisecond})
	expectMsgs(t, msgs, "WATCHDOG=1", "READY=1", "STATUS=running; netconf ok")
	<-readies // OnReady follows READY=1
	<-groupCalls
	close(releaseGroups)
	expectMsgs(t, msgs, "STATUS=running; netconf ok; group web holder")
	assert.NoError(t, a.Health())

	loop.reconcile(Report{Component: ComponentNetconf, Blackholed: true})
	expectMsgs(t, msgs, "WATCHDOG=1", "STATUS=running; netconf ok; group web holder; metadata black hole detected")

	// /status and /healthz.
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status")
	require.NoError(t, err)
	var got Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, int64(2), got.InstanceID)
	assert.Equal(t, "v9", got.Version)
	assert.True(t, got.Ready)
	assert.True(t, got.MetadataBlackholed)
	assert.Equal(t, 0, got.Components[ComponentNetconf].Changes)
	assert.Equal(t, []any{map[string]any{"name": "web", "role": "holder"}}, got.Groups)
	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `hcagent_netlink_changes_total{component="netconf"} 3`)
	assert.Contains(t, string(body), `hcagent_reconcile_errors_total{component="netconf"} 1`)
	assert.Contains(t, string(body), "hcagent_metadata_blackholed 1")
	assert.Contains(t, string(body), "hcagent_ready 1")
	assert.NotContains(t, string(body), "secret-token")

	cancel()
	expectMsgs(t, msgs, "STOPPING=1", "STATUS=stopping: handing over floating IPs; netconf ok; group web holder; metadata black hole detected")
	<-group.handovers
	require.NoError(t, <-runErr)
	assert.Empty(t, readies, "OnReady is called once, not on every reconcile")
	assert.NotContains(t, logs.String(), "secret-token")
	// The black hole is logged once, when it appears.
	assert.Equal(t, 1, strings.Count(logs.String(), "metadata black hole:"))
	// The repeated metadata error was logged once.
	assert.Equal(t, 1, strings.Count(logs.String(), "read metadata summary failed"))
}

func TestRunWithoutToken(t *testing.T) {
	var logs syncBuffer
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}, Groups: []config.Group{{Name: "web"}}}
	var notes []string
	var mu sync.Mutex
	ready := make(chan struct{})
	a, err := New(cfg, Options{
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Notify: func(s string) error {
			mu.Lock()
			defer mu.Unlock()
			notes = append(notes, s)
			if s == "READY=1" {
				close(ready)
			}
			return nil
		},
		Watchdog: func() (time.Duration, error) { return 0, nil },
	})
	require.NoError(t, err)
	// The daemon's wiring without a token: nothing that needs the API.
	wire := func(ctx context.Context, sum metadata.Summary) (Components, error) {
		noToken(a.log, cfg)
		return Components{}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire) }()
	<-ready // nothing reconciles: ready right after the state check
	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, logs.String(), "no API token: floating IPs and failover groups are not started")
	mu.Lock()
	defer mu.Unlock()
	assert.NotContains(t, notes, "WATCHDOG=1")
	assert.Contains(t, notes, "STOPPING=1")
}

func TestRunComponentFailure(t *testing.T) {
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	loops := make(chan *fakeLoop, 1)
	a, err := New(cfg, Options{
		Notify:   func(string) error { return nil },
		Watchdog: func() (time.Duration, error) { return 0, nil },
	})
	require.NoError(t, err)
	wire := func(ctx context.Context, sum metadata.Summary) (Components, error) {
		l := newFakeLoop(a.Report)
		loops <- l
		return Components{Netconf: l}, nil
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(t.Context(), &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire) }()
	(<-loops).fatal <- errors.New("netlink socket closed")
	err = <-done
	require.ErrorContains(t, err, "run netconf: netlink socket closed")
}

func TestRunCreateFailure(t *testing.T) {
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	a, err := New(cfg, Options{
		Notify:   func(string) error { return nil },
		Watchdog: func() (time.Duration, error) { return 0, nil },
	})
	require.NoError(t, err)
	wire := func(ctx context.Context, sum metadata.Summary) (Components, error) {
		return Components{}, errors.New("create private network reconciler: open netlink: permission denied")
	}
	require.ErrorContains(t, a.Run(t.Context(), &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire),
		"start agent: create private network reconciler: open netlink: permission denied")
}

func TestRunMetricsPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: ln.Addr().String()}}
	md := &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}
	a, err := New(cfg, Options{Notify: func(string) error { return nil }, Watchdog: func() (time.Duration, error) { return 0, nil }})
	require.NoError(t, err)
	wire := func(context.Context, metadata.Summary) (Components, error) { return Components{}, nil }
	require.ErrorContains(t, a.Run(t.Context(), md, wire), "listen for metrics on")
	assert.Equal(t, 0, md.calls, "metadata read although the agent could not start")
}

// TestRunRetriesGroupCreation: a group that cannot be created yet (its
// gossip address is not configured) is retried while the rest of the agent
// runs, shown in STATUS= and logged once.
func TestRunRetriesGroupCreation(t *testing.T) {
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	cfg.API.Token = "secret-token"
	cfg.Groups = []config.Group{{Name: "web"}}
	var logs syncBuffer
	notes := make(chan string, 100)
	group := &fakeGroup{name: "web", handovers: make(chan struct{}, 1)}
	calls := 0
	started := make(chan struct{})
	a, err := New(cfg, Options{
		Log:        slog.New(slog.NewTextHandler(&logs, nil)),
		Notify:     func(s string) error { notes <- s; return nil },
		Watchdog:   func() (time.Duration, error) { return 0, nil },
		RetryDelay: time.Millisecond,
	})
	require.NoError(t, err)
	wire := func(context.Context, metadata.Summary) (Components, error) {
		return Components{Groups: func(ctx context.Context) ([]Group, error) {
			calls++
			if calls < 4 {
				return nil, errors.New("group web: listen udp 10.0.0.2:7946: bind: cannot assign requested address")
			}
			close(started)
			return []Group{group}, nil
		}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire) }()
	<-started
	var seen []string
	for s := range notes {
		seen = append(seen, s)
		if s == "STATUS=running; group web holder" {
			break
		}
	}
	assert.Contains(t, seen, "STATUS=running; failover groups not started: group web: listen udp 10.0.0.2:7946: bind: cannot assign requested address")
	assert.Equal(t, 1, strings.Count(logs.String(), "create failover groups failed"), "a repeated error is logged once")
	cancel()
	<-group.handovers
	require.NoError(t, <-done)
	assert.Equal(t, 4, calls)
}

// TestRunStopsWhileGroupsWait: a shutdown while groups still wait for the
// private network returns at once and creates nothing.
func TestRunStopsWhileGroupsWait(t *testing.T) {
	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	cfg.API.Token = "secret-token"
	cfg.Groups = []config.Group{{Name: "web"}}
	loops := make(chan *fakeLoop, 1)
	a, err := New(cfg, Options{
		Notify:         func(string) error { return nil },
		Watchdog:       func() (time.Duration, error) { return 0, nil },
		GroupStartWait: time.Hour,
	})
	require.NoError(t, err)
	wire := func(context.Context, metadata.Summary) (Components, error) {
		l := newFakeLoop(a.Report)
		loops <- l
		return Components{Netconf: l, Groups: func(ctx context.Context) ([]Group, error) {
			t.Error("groups created although netconf never succeeded")
			return nil, nil
		}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire) }()
	(<-loops).reconcile(Report{Component: ComponentNetconf, Err: errors.New("nl boom")})
	cancel()
	require.NoError(t, <-done)
}
