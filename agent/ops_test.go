package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/reload"
	"github.com/hc-agent/hc-agent/statedir"
)

// drainGroup is a fakeGroup that can be drained and reports it in Status.
type drainGroup struct {
	fakeGroup
	mu      sync.Mutex
	drained bool
	stopped chan struct{}
}

func newDrainGroup(name string) *drainGroup {
	return &drainGroup{fakeGroup: fakeGroup{name: name, handovers: make(chan struct{}, 4)}, stopped: make(chan struct{})}
}

func (g *drainGroup) Run(ctx context.Context) error {
	<-ctx.Done()
	close(g.stopped)
	return nil
}

func (g *drainGroup) Drain(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drained = true
	return nil
}

func (g *drainGroup) Resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drained = false
}

func (g *drainGroup) Status() any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return map[string]any{"name": g.name, "drained": g.drained}
}

// fakeFactory builds drainGroups for a reload.
type fakeFactory struct {
	mu    sync.Mutex
	built map[string]*drainGroup
}

func (f *fakeFactory) NewGroup(_ context.Context, g config.Group) (Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dg := newDrainGroup(g.Name)
	f.built[g.Name] = dg
	return dg, nil
}

func (f *fakeFactory) Peers(context.Context, config.Group) ([]string, error) { return nil, nil }

type opsStatus struct {
	Groups []struct {
		Name    string `json:"name"`
		Drained bool   `json:"drained"`
	} `json:"groups"`
}

// TestControlAndTarget runs the supervisor with one group and drives it
// over its control socket and as a reload target.
func TestControlAndTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the control socket serves root only; run as root")
	}
	cfg := config.Config{StateDir: t.TempDir(), RuntimeDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	cfg.API.Token = "secret-token"
	cfg.Groups = []config.Group{{Name: "web"}}
	web := newDrainGroup("web")
	factory := &fakeFactory{built: map[string]*drainGroup{}}
	started := make(chan struct{})
	a, err := New(cfg, Options{
		Log:      slog.New(slog.DiscardHandler),
		Notify:   func(string) error { return nil },
		Watchdog: func() (time.Duration, error) { return 0, nil },
	})
	require.NoError(t, err)
	wire := func(context.Context, metadata.Summary) (Components, error) {
		return Components{Factory: factory, Groups: func(context.Context) ([]Group, error) {
			defer close(started)
			return []Group{web}, nil
		}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &fakeMetadata{sum: metadata.Summary{InstanceID: 7}}, wire) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	<-started
	c := control.NewClient(control.Path(cfg.RuntimeDir))
	// The socket may be up before the groups run: wait until it answers
	// with the group (the test's only poll, on the daemon's own answer).
	var st opsStatus
	require.Eventually(t, func() bool { return c.Status(ctx, &st) == nil && len(st.Groups) == 1 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, c.Handover(ctx, []string{"web"}))
	require.NoError(t, c.Status(ctx, &st))
	assert.True(t, st.Groups[0].Drained)
	var re *control.RefusedError
	require.ErrorAs(t, c.Handover(ctx, []string{"nope"}), &re)
	assert.Equal(t, 404, re.Status)
	require.NoError(t, c.Resume(ctx, nil))
	require.NoError(t, c.Status(ctx, &st))
	assert.False(t, st.Groups[0].Drained)

	// Reload is refused until the daemon has a reloader.
	assert.ErrorContains(t, c.Reload(ctx), "reload is not available")
	reloaded := 0
	a.SetReload(func(context.Context) error { reloaded++; return nil })
	require.NoError(t, c.Reload(ctx))
	assert.Equal(t, 1, reloaded)

	// As a reload target: a new group starts, a removed one hands over
	// and stops.
	require.NoError(t, a.StartGroup(ctx, config.Group{Name: "db"}, nil))
	require.NoError(t, c.Status(ctx, &st))
	require.Len(t, st.Groups, 2)
	assert.Equal(t, "db", st.Groups[1].Name)
	require.NoError(t, a.StopGroup(ctx, "web"))
	<-web.handovers
	<-web.stopped
	require.NoError(t, c.Status(ctx, &st))
	require.Len(t, st.Groups, 1)
	assert.Equal(t, "db", st.Groups[0].Name)
	assert.ErrorAs(t, a.StopGroup(ctx, "web"), new(*control.NotFoundError))
	assert.ErrorIs(t, a.ReconcilePrivateNetworks(ctx, config.PrivateNetworks{}), reload.ErrNeedsRestart, "no reconciler: private networks were off at start")
}

func TestCheckSerial(t *testing.T) {
	tests := []struct {
		name     string
		serial   string // "" writes no file
		recorded int64
		wantKept bool
	}{
		{name: "same server", serial: "7\n", recorded: 7, wantKept: true},
		{name: "snapshot of another server", serial: "8\n", recorded: 7, wantKept: false},
		{name: "no dmi", serial: "", recorded: 7, wantKept: true},
		{name: "serial that is no instance id", serial: "VMware-42\n", recorded: 7, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			serialFile := filepath.Join(t.TempDir(), "product_serial")
			if tt.serial != "" {
				require.NoError(t, os.WriteFile(serialFile, []byte(tt.serial), 0o400))
			}
			require.NoError(t, statedir.SaveState(dir, statedir.State{InstanceID: tt.recorded}))
			a, err := New(config.Config{StateDir: dir, SMBIOSSerialFile: serialFile}, Options{})
			require.NoError(t, err)
			a.checkSerial()
			_, ok, err := statedir.LoadState(dir)
			require.NoError(t, err)
			assert.Equal(t, tt.wantKept, ok, "state record kept")
		})
	}
	t.Run("off", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, statedir.SaveState(dir, statedir.State{InstanceID: 7}))
		a, err := New(config.Config{StateDir: dir, SMBIOSSerialFile: config.SMBIOSSerialOff}, Options{})
		require.NoError(t, err)
		a.checkSerial()
		_, ok, _ := statedir.LoadState(dir)
		assert.True(t, ok)
	})
}
