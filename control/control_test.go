package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDaemon is a stateful Daemon: groups and whether each is drained.
type fakeDaemon struct {
	mu        sync.Mutex
	drained   map[string]bool
	reloads   int
	reloadErr error
}

func newFakeDaemon(groups ...string) *fakeDaemon {
	d := &fakeDaemon{drained: map[string]bool{}}
	for _, g := range groups {
		d.drained[g] = false
	}
	return d
}

type fakeStatus struct {
	Drained []string `json:"drained"`
	Reloads int      `json:"reloads"`
}

func (d *fakeDaemon) Status(context.Context) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := fakeStatus{Drained: []string{}, Reloads: d.reloads}
	for g, on := range d.drained {
		if on {
			s.Drained = append(s.Drained, g)
		}
	}
	sort.Strings(s.Drained)
	return s
}

func (d *fakeDaemon) set(groups []string, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(groups) == 0 {
		for g := range d.drained {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		if _, ok := d.drained[g]; !ok {
			return &NotFoundError{Group: g}
		}
	}
	for _, g := range groups {
		d.drained[g] = on
	}
	return nil
}

func (d *fakeDaemon) Handover(_ context.Context, groups []string) error { return d.set(groups, true) }
func (d *fakeDaemon) Resume(_ context.Context, groups []string) error   { return d.set(groups, false) }

func (d *fakeDaemon) Reload(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reloadErr != nil {
		return d.reloadErr
	}
	d.reloads++
	return nil
}

// serveSocket serves d on a socket in a fresh directory and returns its path.
func serveSocket(t *testing.T, d Daemon) string {
	t.Helper()
	path := Path(t.TempDir())
	srv, err := Listen(path, d, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		_, err := os.Lstat(path)
		assert.ErrorIs(t, err, os.ErrNotExist, "socket left after Serve")
	})
	return path
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the control socket serves root only (SO_PEERCRED); run as root")
	}
}

func TestClientServer(t *testing.T) {
	requireRoot(t)
	d := newFakeDaemon("db", "web")
	c := NewClient(serveSocket(t, d))
	ctx := t.Context()

	status := func() fakeStatus {
		var s fakeStatus
		require.NoError(t, c.Status(ctx, &s))
		return s
	}
	tests := []struct {
		name        string
		do          func() error
		wantErr     string
		wantStatus  int
		wantDrained []string
		wantReloads int
	}{
		{name: "status of a fresh daemon", do: func() error { return nil }, wantDrained: []string{}},
		{name: "handover one group", do: func() error { return c.Handover(ctx, []string{"web"}) }, wantDrained: []string{"web"}},
		{name: "handover every group", do: func() error { return c.Handover(ctx, nil) }, wantDrained: []string{"db", "web"}},
		{name: "resume one group", do: func() error { return c.Resume(ctx, []string{"db"}) }, wantDrained: []string{"web"}},
		{name: "unknown group changes nothing", do: func() error { return c.Resume(ctx, []string{"web", "nope"}) }, wantErr: `resume: no group "nope"`, wantStatus: 404, wantDrained: []string{"web"}},
		{name: "resume every group", do: func() error { return c.Resume(ctx, nil) }, wantDrained: []string{}},
		{name: "reload", do: func() error { return c.Reload(ctx) }, wantDrained: []string{}, wantReloads: 1},
		{name: "reload refused", do: func() error {
			d.mu.Lock()
			d.reloadErr = errors.New("config /etc/hc-agent/config.yaml: 1 problem: log.colour: unknown key")
			d.mu.Unlock()
			return c.Reload(ctx)
		}, wantErr: "reload: config /etc/hc-agent/config.yaml: 1 problem: log.colour: unknown key", wantStatus: 409, wantDrained: []string{}, wantReloads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.wantErr != "" {
				var re *RefusedError
				require.True(t, errors.As(err, &re), "want a RefusedError, got %v", err)
				assert.Equal(t, tt.wantErr, err.Error())
				assert.Equal(t, tt.wantStatus, re.Status)
			} else {
				require.NoError(t, err)
			}
			got := status()
			assert.Equal(t, tt.wantDrained, got.Drained)
			assert.Equal(t, tt.wantReloads, got.Reloads)
		})
	}
}

func TestSocketMode(t *testing.T) {
	requireRoot(t)
	path := serveSocket(t, newFakeDaemon())
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	t.Run("runtime dir is created outside systemd", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "run", "hc-agent")
		srv, err := Listen(Path(dir), newFakeDaemon(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { srv.ln.Close() })
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm())
	})
}

func TestListenExistingFile(t *testing.T) {
	requireRoot(t)
	log := slog.New(slog.DiscardHandler)
	t.Run("stale socket is replaced", func(t *testing.T) {
		path := Path(t.TempDir())
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		// Close without removing the file, as a crashed daemon leaves it.
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		require.NoError(t, ln.Close())
		srv, err := Listen(path, newFakeDaemon(), log)
		require.NoError(t, err)
		require.NoError(t, srv.ln.Close())
	})
	t.Run("running daemon is not replaced", func(t *testing.T) {
		path := serveSocket(t, newFakeDaemon())
		_, err := Listen(path, newFakeDaemon(), log)
		assert.ErrorContains(t, err, "another hc-agent answers on it")
	})
	t.Run("other file is not removed", func(t *testing.T) {
		path := Path(t.TempDir())
		require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
		_, err := Listen(path, newFakeDaemon(), log)
		assert.ErrorContains(t, err, "exists and is not a socket")
		_, err = os.Stat(path)
		assert.NoError(t, err)
	})
}

func TestClientNotRunning(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(path string)
	}{
		{"no socket", func(string) {}},
		{"stale socket", func(path string) {
			ln, err := net.Listen("unix", path)
			require.NoError(t, err)
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			require.NoError(t, ln.Close())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := Path(t.TempDir())
			tc.setup(path)
			err := NewClient(path).Reload(t.Context())
			assert.ErrorIs(t, err, ErrNotRunning)
			assert.ErrorContains(t, err, path)
		})
	}
}

// childEnv makes the test binary a client that calls Status on the socket
// it names, for TestRootOnly.
const childEnv = "HCAGENT_CONTROL_CHILD_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		var s fakeStatus
		if err := NewClient(path).Status(context.Background(), &s); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("served")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRootOnly opens the socket to everyone (mode 0666 in a 0755 directory)
// and connects as nobody: the peer credential check still refuses it,
// while root is served.
func TestRootOnly(t *testing.T) {
	requireRoot(t)
	path := serveSocket(t, newFakeDaemon("web"))
	require.NoError(t, os.Chmod(path, 0o666))
	// Open the test's own temporary directories (t.TempDir makes them
	// 0700) up to the system's temporary directory.
	openUp := func(dir string) {
		for ; dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
			require.NoError(t, os.Chmod(dir, 0o755))
		}
	}
	openUp(filepath.Dir(path))
	exe, err := os.Executable()
	require.NoError(t, err)
	// The test binary lives in a directory nobody may not enter: copy it.
	bin := filepath.Join(t.TempDir(), "control.test")
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	openUp(filepath.Dir(bin))
	for dir := filepath.Dir(filepath.Dir(path)); dir != "/"; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("skipping: %s is not searchable by others, so nobody cannot reach the socket", dir)
		}
	}

	for _, tc := range []struct {
		name       string
		uid        uint32
		wantServed bool
	}{
		{"root", 0, true},
		{"nobody", 65534, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid}}
			out, err := cmd.CombinedOutput()
			if tc.wantServed {
				require.NoError(t, err, "%s", out)
				assert.Equal(t, "served\n", string(out))
				return
			}
			require.Error(t, err, "nobody was served: %s", out)
			// Connected (the mode allowed it) and then dropped by the
			// credential check, not refused by the file system.
			assert.NotContains(t, string(out), "permission denied")
			assert.False(t, slices.Contains(strings.Split(string(out), "\n"), "served"), "%s", out)
		})
	}
}
