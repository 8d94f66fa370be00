package netconf

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/hc-agent/hc-agent/internal/nstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var fipLinkSeq atomic.Int32

// v4Default is 0.0.0.0/0: netlink refuses a route without a destination.
var v4Default = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}

// fipCountingNL counts netlink writes.
type fipCountingNL struct {
	fipHandle
	writes atomic.Int32
}

func (c *fipCountingNL) AddrReplace(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.fipHandle.AddrReplace(l, a)
}

func (c *fipCountingNL) AddrDel(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.fipHandle.AddrDel(l, a)
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
		p, _ := ipconv.Prefix(a.IPNet)
		out = append(out, p.String())
		flags[p.String()] = a.Flags
	}
	slices.Sort(out)
	return out, flags
}

func TestApplierNetns(t *testing.T) {
	_, h := nstest.New(t)
	seq := fipLinkSeq.Add(1)
	name := fmt.Sprintf("hcf%d-%d", os.Getpid()%100000, seq)
	peerName := fmt.Sprintf("hcg%d-%d", os.Getpid()%100000, seq)
	mac, _ := net.ParseMAC("96:00:00:aa:bb:01")
	// The peer gets a random MAC from the kernel, which starts with 96: once
	// in 64 runs: the applier must still pick the NIC with the default route.
	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}, PeerName: peerName}))
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(l))
	// Like a real server, the public NIC carries the IPv4 default route.
	require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: v4Default}))
	// A foreign address (e.g. set by cloud-init) that hc-agent must keep.
	foreign := &netlink.Addr{IPNet: ipconv.IPNet(netip.MustParsePrefix("198.51.100.9/32"))}
	require.NoError(t, h.AddrAdd(l, foreign))

	state := filepath.Join(t.TempDir(), "state", "floatingips.json")
	nl := &fipCountingNL{fipHandle: h}
	a, err := NewFloatingIPApplier(nl, state, slog.New(slog.DiscardHandler))
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
		b, err := NewFloatingIPApplier(h, state, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		assert.Equal(t, []string{v6.String()}, b.Owned("group:web"))
		require.NoError(t, b.Set(ctx, "group:web", nil))
		got, _ := addrsOf(t, h, name)
		assert.Equal(t, []string{"198.51.100.9/32"}, got)
	})
}

// TestApplierPublicNICNetns shows which of several links with a 96: MAC the
// applier configures. Veth, bridge and macvlan links get random MACs whose
// first byte is 0x96 once in 64; taking the first 96: link put floating IPs
// on a veth peer in TestApplierNetns now and then.
func TestApplierPublicNICNetns(t *testing.T) {
	type link struct {
		mac            string
		v4Default      bool
		v6Default      bool
		wantFloatingIP bool
	}
	tests := []struct {
		name  string
		links []link // created in this order, so with rising indexes
	}{
		{"single 96: link", []link{
			{mac: "02:00:00:00:00:01"},
			{mac: "96:00:00:aa:bb:01", wantFloatingIP: true},
		}},
		{"random 96: mac before the nic with the ipv4 default route", []link{
			{mac: "96:1f:7a:71:cf:c8"},
			{mac: "96:00:00:aa:bb:01", v4Default: true, wantFloatingIP: true},
		}},
		{"ipv4 default route beats 96:00 and a lower index", []link{
			{mac: "96:00:00:00:00:09", v6Default: true},
			{mac: "96:2c:02:06:e6:66", v4Default: true, v6Default: true, wantFloatingIP: true},
		}},
		{"ipv6 default route on an ipv6-only server", []link{
			{mac: "96:8d:7c:87:4a:d1"},
			{mac: "96:00:00:aa:bb:01", v6Default: true, wantFloatingIP: true},
		}},
		{"without default route 96:00 beats a random mac", []link{
			{mac: "96:2b:b3:eb:42:64"},
			{mac: "96:00:00:aa:bb:01", wantFloatingIP: true},
		}},
		{"without default route the lowest index wins", []link{
			{mac: "96:00:00:aa:bb:01", wantFloatingIP: true},
			{mac: "96:00:00:aa:bb:02"},
		}},
		{"no 96: link: the ipv4 default route", []link{
			{mac: "02:00:00:00:00:01"},
			{mac: "02:00:00:00:00:02", v4Default: true, wantFloatingIP: true},
		}},
	}
	fip := netip.MustParsePrefix("203.0.113.10/32")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, h := nstest.New(t)
			var names []string
			for i, ln := range tt.links {
				seq := fipLinkSeq.Add(1)
				name := fmt.Sprintf("hcn%d-%d", os.Getpid()%100000, seq)
				mac, err := net.ParseMAC(ln.mac)
				require.NoError(t, err)
				// The peer's MAC is fixed too, so that no case depends on chance.
				peerMAC := net.HardwareAddr{0x02, 0xee, 0, 0, byte(seq >> 8), byte(seq)}
				require.NoError(t, h.LinkAdd(&netlink.Veth{
					LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac},
					PeerName:  fmt.Sprintf("hcp%d-%d", os.Getpid()%100000, seq), PeerHardwareAddr: peerMAC,
				}), "link %d", i)
				l, err := h.LinkByName(name)
				require.NoError(t, err)
				require.NoError(t, h.LinkSetUp(l))
				if ln.v4Default {
					require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: v4Default}))
				}
				if ln.v6Default {
					// A metric per link: two IPv6 default routes with the same
					// metric on different links are refused as existing.
					require.NoError(t, h.RouteAdd(&netlink.Route{
						LinkIndex: l.Attrs().Index, Priority: 100 + i,
						Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
					}))
				}
				names = append(names, name)
			}
			a, err := NewFloatingIPApplier(h, "", slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			require.NoError(t, a.Set(t.Context(), "manager", []netip.Prefix{fip}))
			for i, ln := range tt.links {
				got, _ := addrsOf(t, h, names[i])
				assert.Equal(t, ln.wantFloatingIP, slices.Contains(got, fip.String()),
					"link %d (%s) has the floating ip: %v", i, ln.mac, got)
			}
		})
	}
}

func TestApplierNoPublicNIC(t *testing.T) {
	_, h := nstest.New(t)
	a, err := NewFloatingIPApplier(h, "", nil)
	require.NoError(t, err)
	assert.ErrorContains(t, a.Set(t.Context(), "manager", nil), "public nic")
}
