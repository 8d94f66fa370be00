package floatingip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var linkSeq atomic.Int32

// newNS creates an unnamed network namespace (destroyed when the test ends,
// with every link in it) from a goroutine that locks its OS thread, and
// returns it with a netlink handle inside. It skips without root.
func newNS(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating network namespaces needs root")
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			ch <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			ch <- result{err: err} // thread stays locked and is discarded
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
	return r.ns, h
}

// countingNL counts netlink writes.
type countingNL struct {
	nlHandle
	writes atomic.Int32
}

func (c *countingNL) AddrReplace(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.nlHandle.AddrReplace(l, a)
}

func (c *countingNL) AddrDel(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.nlHandle.AddrDel(l, a)
}

func addrsOf(t *testing.T, h *netlink.Handle, name string) ([]string, map[string]int) {
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	as, err := h.AddrList(l, netlink.FAMILY_ALL)
	require.NoError(t, err)
	var out []string
	flags := map[string]int{}
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		p, _ := prefixOf(a.IPNet)
		out = append(out, p.String())
		flags[p.String()] = a.Flags
	}
	slices.Sort(out)
	return out, flags
}

func TestApplierNetns(t *testing.T) {
	_, h := newNS(t)
	seq := linkSeq.Add(1)
	name := fmt.Sprintf("hcf%d-%d", os.Getpid()%100000, seq)
	peerName := fmt.Sprintf("hcg%d-%d", os.Getpid()%100000, seq)
	mac, _ := net.ParseMAC("96:00:00:aa:bb:01")
	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}, PeerName: peerName}))
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(l))
	// A foreign address (e.g. set by cloud-init) that hc-agent must keep.
	foreign := &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("198.51.100.9/32"))}
	require.NoError(t, h.AddrAdd(l, foreign))

	state := filepath.Join(t.TempDir(), "state", "floatingips.json")
	nl := &countingNL{nlHandle: h}
	a, err := NewApplier(nl, state, discardLogger())
	require.NoError(t, err)
	ctx := t.Context()
	v4 := netip.MustParsePrefix("203.0.113.10/32")
	v6 := netip.MustParsePrefix("2001:db8:1:2::1/64")

	require.NoError(t, a.Set(ctx, "group:web", []netip.Prefix{v4, v6}))
	got, flags := addrsOf(t, h, name)
	assert.Equal(t, []string{"198.51.100.9/32", "2001:db8:1:2::1/64", "203.0.113.10/32"}, got)
	assert.NotZero(t, flags[v6.String()]&unix.IFA_F_NODAD, "ipv6 without duplicate address detection")
	assert.Zero(t, flags[v6.String()]&unix.IFA_F_TENTATIVE, "not tentative")
	assert.Equal(t, int32(2), nl.writes.Load())
	// Set waited for the kernel's local route: the addresses receive.
	assert.True(t, a.Configured(v6.Addr()), "ipv6 configured with its local route")
	assert.True(t, a.Configured(v4.Addr()))
	assert.Equal(t, []netip.Prefix{v4, v6}, a.Addresses())

	t.Run("second apply makes zero writes", func(t *testing.T) {
		before := nl.writes.Load()
		st1, _ := os.Stat(state)
		require.NoError(t, a.Set(ctx, "group:web", []netip.Prefix{v6, v4}))
		assert.Equal(t, before, nl.writes.Load())
		st2, _ := os.Stat(state)
		assert.Equal(t, st1.ModTime(), st2.ModTime())
	})
	t.Run("foreign address is never claimed or removed", func(t *testing.T) {
		require.NoError(t, a.Set(ctx, "manager", []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")}))
		require.NoError(t, a.Set(ctx, "manager", nil))
		got, _ := addrsOf(t, h, name)
		assert.Contains(t, got, "198.51.100.9/32")
	})
	t.Run("shared address stays while another owner wants it", func(t *testing.T) {
		require.NoError(t, a.Set(ctx, "manager", []netip.Prefix{v4}))
		require.NoError(t, a.Set(ctx, "group:web", []netip.Prefix{v6}))
		got, _ := addrsOf(t, h, name)
		assert.Contains(t, got, v4.String())
		require.NoError(t, a.Set(ctx, "manager", nil))
		got, _ = addrsOf(t, h, name)
		assert.NotContains(t, got, v4.String())
	})
	t.Run("ownership survives a restart", func(t *testing.T) {
		b, err := NewApplier(h, state, discardLogger())
		require.NoError(t, err)
		assert.Equal(t, []string{v6.String()}, b.Owned("group:web"))
		require.NoError(t, b.Set(ctx, "group:web", nil))
		got, _ := addrsOf(t, h, name)
		assert.Equal(t, []string{"198.51.100.9/32"}, got)
	})
}

func TestApplierNoPublicNIC(t *testing.T) {
	_, h := newNS(t)
	a, err := NewApplier(h, "", nil)
	require.NoError(t, err)
	assert.ErrorContains(t, a.Set(t.Context(), "manager", nil), "public nic")
}
