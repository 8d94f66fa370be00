package floatingip

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGroupKeepalivedMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cloud := newFakeCloud(300*time.Millisecond, FloatingIP{ID: fipID, Name: "vip", Type: "ipv4", IP: vip.Addr(), ServerID: 9})
		host := &fakeHost{}
		events := make(chan NotifyEvent)
		g, err := NewGroup(withConfigDefaults(GroupConfig{Name: "web", Self: 2, Mode: "keepalived", FloatingIPs: []string{"vip"}}),
			GroupDeps{Cloud: cloud, Host: host, Notify: events})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- g.Run(ctx) }()

		events <- NotifyEvent{"INSTANCE", "VI_1", "BACKUP", 100}
		synctest.Wait()
		assert.Empty(t, host.configured("group:web"))
		events <- NotifyEvent{"INSTANCE", "VI_1", "MASTER", 100}
		time.Sleep(time.Second)
		assert.Equal(t, int64(2), cloud.holder(fipID))
		assert.Equal(t, []string{"1->2"}, cloud.assignCalls())
		assert.NotEmpty(t, host.configured("group:web"))
		assert.Equal(t, RoleHolder, g.Status().Role)
		events <- NotifyEvent{"INSTANCE", "VI_1", "FAULT", 0}
		synctest.Wait()
		assert.Empty(t, host.configured("group:web"), "step down at once")
		cancel()
		require.NoError(t, <-done)
	})
}

// TestKeepalivedFIFOToGroup feeds a real FIFO to a keepalived-mode group.
func TestKeepalivedFIFOToGroup(t *testing.T) {
	cloud := newFakeCloud(0, FloatingIP{ID: fipID, Name: "vip", Type: "ipv4", IP: vip.Addr(), ServerID: 9})
	host := &fakeHost{}
	events := make(chan NotifyEvent)
	path := filepath.Join(t.TempDir(), "notify.fifo")
	g, err := NewGroup(withConfigDefaults(GroupConfig{Name: "web", Self: 2, Mode: "keepalived", FloatingIPs: []string{"vip"}}),
		GroupDeps{Cloud: cloud, Host: host, Notify: events, Hooks: Hooks{}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = ReadNotifyFIFO(ctx, path, "VI_1", discardLogger(), events) }()
	roles := make(chan Role, 10)
	g.deps.Hooks.RoleChanged = func(_ string, r Role) { roles <- r }
	go func() { _ = g.Run(ctx) }()

	var w *os.File
	require.Eventually(t, func() bool {
		var err error
		w, err = os.OpenFile(path, os.O_WRONLY, 0)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	defer w.Close()
	_, err = w.WriteString("INSTANCE \"VI_1\" MASTER 100\n")
	require.NoError(t, err)
	waitRole(t, roles, RoleHolder)
	assert.Equal(t, int64(2), cloud.holder(fipID))
	_, err = w.WriteString("INSTANCE \"VI_1\" BACKUP 100\n")
	require.NoError(t, err)
	waitRole(t, roles, RoleStandby)
	assert.Empty(t, host.configured("group:web"))
}

func waitRole(t *testing.T, roles <-chan Role, want Role) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-roles:
			if r == want {
				return
			}
		case <-deadline:
			t.Fatalf("role %s not reached", want)
		}
	}
}

// fifoHasReader reports whether some process has path open for reading:
// a non-blocking open for writing fails with ENXIO without a reader.
func fifoHasReader(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) || errors.Is(err, os.ErrNotExist) {
		return false
	}
	require.NoError(t, err)
	f.Close()
	return true
}

// TestKeepalivedFIFOReaderLivesWithRun checks that the notify_fifo reader
// belongs to the group's Run (issue 11 defect 3): a created group that
// never runs holds no reader, and none is left once Run returned, so a
// retried group creation cannot leave two readers on one FIFO.
func TestKeepalivedFIFOReaderLivesWithRun(t *testing.T) {
	cloud := newFakeCloud(0, FloatingIP{ID: fipID, Name: "vip", Type: "ipv4", IP: vip.Addr(), ServerID: 9})
	path := filepath.Join(t.TempDir(), "notify.fifo")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	newGroup := func() *Group {
		g, err := NewGroup(withConfigDefaults(GroupConfig{Name: "web", Self: 2, Mode: "keepalived", FloatingIPs: []string{"vip"}}),
			GroupDeps{Cloud: cloud, Host: &fakeHost{}, NotifyFIFO: path, NotifyInstance: "VI_1"})
		require.NoError(t, err)
		return g
	}
	newGroup() // created, never run
	assert.False(t, fifoHasReader(t, path), "a group that does not run reads the fifo")

	g := newGroup()
	roles := make(chan Role, 10)
	g.deps.Hooks.RoleChanged = func(_ string, r Role) { roles <- r }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	// A blocking open for writing returns once Run's reader opened it.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteString("INSTANCE \"VI_1\" MASTER 100\n")
	require.NoError(t, err)
	w.Close()
	waitRole(t, roles, RoleHolder)
	cancel()
	require.NoError(t, <-done)
	assert.False(t, fifoHasReader(t, path), "the reader outlived Run")
}
