// Package nstest creates network namespaces for root-only tests: one helper
// for every package, so that the rules below live in one place.
package nstest

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips the test with a clear message unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating network namespaces needs root")
	}
}

// New creates an unnamed network namespace with its loopback up, and a
// netlink handle inside it; both are closed when the test ends, which
// destroys the namespace with every link in it. It skips without root.
//
// The namespace is created from a goroutine that locks its OS thread and
// switches back to the original namespace afterwards. If switching back
// fails the thread stays locked, so the runtime discards it instead of
// reusing a thread in the wrong namespace.
func New(t testing.TB) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	RequireRoot(t)
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			ch <- result{err: fmt.Errorf("create netns: %w", err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			ch <- result{err: fmt.Errorf("restore netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns: ns}
	}()
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { r.ns.Close() })
	h, err := netlink.NewHandleAt(r.ns)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	lo, err := h.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(lo))
	return r.ns, h
}
