package keepalived

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

var nsCounter atomic.Int64

// ipCmd runs ip(8) and fails the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// nsPair creates two network namespaces joined by a veth pair with
// 10.77.0.1/24 and 10.77.0.2/24, and removes them when the test ends.
func nsPair(t *testing.T) (a, b string) {
	t.Helper()
	n := nsCounter.Add(1)
	a = fmt.Sprintf("kabench%d-%da", os.Getpid(), n)
	b = fmt.Sprintf("kabench%d-%db", os.Getpid(), n)
	for _, ns := range []string{a, b} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "-n", a, "link", "add", "priv", "type", "veth", "peer", "name", "priv", "netns", b)
	ipCmd(t, "-n", a, "addr", "add", "10.77.0.1/24", "dev", "priv")
	ipCmd(t, "-n", b, "addr", "add", "10.77.0.2/24", "dev", "priv")
	ipCmd(t, "-n", a, "link", "set", "priv", "up")
	ipCmd(t, "-n", b, "link", "set", "priv", "up")
	return a, b
}

// listenIn opens a TCP listener inside network namespace name. The socket
// stays in that namespace after the thread switches back.
func listenIn(t *testing.T, name, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err := netns.Set(orig); err == nil {
			// Only a thread back in its own namespace may be reused.
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.ln.Close() })
	return r.ln
}

// TestFailoverInNamespaces runs the real baseline: two keepalived over a
// veth pair, the API fake inside the first namespace. Killing the master
// makes the backup MASTER and its script assigns the floating IP to it.
func TestFailoverInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and run keepalived")
	}
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("keepalived is not installed at %s", Binary)
	}
	a, b := nsPair(t)
	api := &fakeAPI{pollsNeeded: 1, notify: make(chan int64, 8)}
	ln := listenIn(t, a, "10.77.0.1:0")
	srv := &http.Server{Handler: api}
	go func() { _ = srv.Serve(ln) }() // exits when the listener closes
	t.Cleanup(func() { _ = srv.Close() })
	endpoint := "http://" + ln.Addr().String() + "/v1"

	start := func(ns string, src, peer string, prio int, server int64) *Process {
		dir := t.TempDir()
		s := Script{Endpoint: endpoint, HeaderFile: writeHeaderFile(t, dir, testToken), FloatingIPID: 4711,
			ServerID: server, LogFile: filepath.Join(dir, "notify.log"), PollInterval: 100 * time.Millisecond}
		text, err := s.Render()
		require.NoError(t, err)
		script := filepath.Join(dir, "notify.sh")
		require.NoError(t, os.WriteFile(script, []byte(text), 0o700))
		conf, err := Config{RouterID: ns, Interface: "priv", Priority: prio,
			SrcIP: netip.MustParseAddr(src), Peers: []netip.Addr{netip.MustParseAddr(peer)},
			VIP: netip.MustParsePrefix("203.0.113.10/32"), VIPDevice: "lo", NotifyMaster: script}.Render()
		require.NoError(t, err)
		p, err := Start(ns, dir, conf, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Kill() })
		return p
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	pa := start(a, "10.77.0.1", "10.77.0.2", 150, 1)
	_, err := pa.WaitState(ctx, "MASTER")
	require.NoError(t, err, "first keepalived: %s", pa.Tail())
	pb := start(b, "10.77.0.2", "10.77.0.1", 100, 2)
	_, err = pb.WaitState(ctx, "BACKUP")
	require.NoError(t, err, "second keepalived: %s", pb.Tail())

	killed := time.Now()
	require.NoError(t, pa.Kill())
	at, err := pb.WaitState(ctx, "MASTER")
	require.NoError(t, err, "second keepalived: %s", pb.Tail())
	t.Logf("backup became MASTER %v after the master was killed", at.Sub(killed))
	// advert_int 1 means about three missed adverts plus skew.
	assert.Greater(t, at.Sub(killed), time.Second)

	for _, want := range []int64{1, 2} {
		select {
		case got := <-api.notify:
			assert.Equal(t, want, got, "assigned server")
		case <-ctx.Done():
			t.Fatalf("no assignment to server %d: %v", want, ctx.Err())
		}
	}
	require.NoError(t, pb.Stop(5*time.Second))
	select {
	case <-pb.Done():
	default:
		t.Fatal("Stop returned before keepalived exited")
	}
}
