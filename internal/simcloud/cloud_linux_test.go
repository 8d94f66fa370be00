package simcloud

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/metadata"
)

func TestMain(m *testing.M) {
	RunHelper()
	os.Exit(m.Run())
}

// newTestCloud builds a cloud with network "net-a" (10.0.0.0/16, subnet
// 10.0.0.0/24) and the named servers attached to it, or skips without root.
func newTestCloud(t *testing.T, configure bool, servers ...string) *Cloud {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simcloud needs root to create network namespaces; run the tests as root")
	}
	c, err := New(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, c.Close())
		assert.Empty(t, c.Leftovers())
	})
	_, err = c.AddNetwork(NetworkSpec{
		Name:    "net-a",
		Network: netip.MustParsePrefix("10.0.0.0/16"),
		Subnet:  netip.MustParsePrefix("10.0.0.0/24"),
	})
	require.NoError(t, err)
	for _, name := range servers {
		_, err := c.AddServer(ServerSpec{Name: name, Networks: []string{"net-a"}, ConfigurePrivate: configure})
		require.NoError(t, err)
	}
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestMetadataPerServer(t *testing.T) {
	c := newTestCloud(t, false, "alpha", "beta")
	for i, name := range []string{"alpha", "beta"} {
		t.Run(name, func(t *testing.T) {
			s := c.Server(name)
			ctx := ctxTimeout(t, 5*time.Second)
			base := c.MetadataEndpoint()
			got, err := s.Get(ctx, base+"/hostname")
			require.NoError(t, err)
			assert.Equal(t, name, got)
			got, err = s.Get(ctx, base+"/instance-id")
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(1001+i), got)
			got, err = s.Get(ctx, base+"/public-ipv4")
			require.NoError(t, err)
			assert.Equal(t, s.PublicIPv4().String(), got)
			got, err = s.Get(ctx, base)
			require.NoError(t, err)
			assert.Contains(t, got, "hostname: "+name+"\n")
			got, err = s.Get(ctx, base+"/private-networks")
			require.NoError(t, err)
			nets, err := metadata.ParsePrivateNetworks([]byte(got))
			require.NoError(t, err)
			require.Len(t, nets, 1)
			assert.Equal(t, netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", 2+i)), nets[0].IP)
			assert.True(t, strings.HasPrefix(nets[0].MACAddress.String(), "86:00:00:"), "mac %s", nets[0].MACAddress)
			assert.Equal(t, netip.MustParseAddr("10.0.0.1"), nets[0].Gateway)
		})
	}
	t.Run("client is unknown", func(t *testing.T) {
		_, err := c.Get(ctxTimeout(t, 5*time.Second), "http://"+MetadataAddr.String()+"/hetzner/v1/metadata")
		require.Error(t, err, "the client namespace must get no metadata")
	})
}

func TestServerNICs(t *testing.T) {
	c := newTestCloud(t, false, "alpha")
	s := c.Server("alpha")
	links, err := s.NetlinkHandle().LinkList()
	require.NoError(t, err)
	var pub, priv []string
	for _, l := range links {
		mac := l.Attrs().HardwareAddr.String()
		switch {
		case strings.HasPrefix(mac, "96:"):
			pub = append(pub, l.Attrs().Name)
		case strings.HasPrefix(mac, "86:00:00:"):
			priv = append(priv, l.Attrs().Name)
			assert.Equal(t, privateMTU, l.Attrs().MTU)
		}
	}
	assert.Equal(t, []string{"eth0"}, pub)
	assert.Equal(t, []string{"ens10"}, priv)
}

func TestFloatingIPFollowsAssignment(t *testing.T) {
	c := newTestCloud(t, false, "alpha", "beta")
	ctx := ctxTimeout(t, 20*time.Second)
	f4, err := c.AddFloatingIP(FloatingIPSpec{Name: "v4"})
	require.NoError(t, err)
	f6, err := c.AddFloatingIP(FloatingIPSpec{Name: "v6", IPv6: true})
	require.NoError(t, err)
	for _, s := range c.Servers() {
		_, err := s.StartNameService(ctx, 80)
		require.NoError(t, err)
		require.NoError(t, s.ConfigureFloatingIP(f4))
		require.NoError(t, s.ConfigureFloatingIP(f6))
	}
	tests := []struct {
		name   string
		assign func()
		want   string // "" = unreachable
	}{
		{"route to alpha", func() { require.NoError(t, c.RouteFloatingIP(f4.Prefix(), "alpha")) }, "alpha"},
		{"assign hook to beta", func() { c.OnAssign(f4.ID(), c.Server("beta").ID(), f4.Prefix()) }, "beta"},
		{"unassign", func() { c.OnAssign(f4.ID(), 0, f4.Prefix()) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.assign()
			assert.Equal(t, tt.want, c.Holder(f4))
			got, err := c.Get(ctxTimeout(t, 2*time.Second), f4.URL())
			if tt.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("ipv6", func(t *testing.T) {
		c.OnAssign(f6.ID(), c.Server("alpha").ID(), f6.Prefix())
		got, err := c.Get(ctxTimeout(t, 2*time.Second), f6.URL())
		require.NoError(t, err)
		assert.Equal(t, "alpha", got)
		cloudRoutes, err := c.ExecCloud(t.Context(), "ip", "-6", "route", "show", f6.Prefix().String())
		require.NoError(t, err)
		assert.Contains(t, cloudRoutes, "via "+c.Server("alpha").PublicIPv6().Addr().Next().String())
	})
	t.Run("metadata via floating ip source", func(t *testing.T) {
		// The metadata service also knows a caller by a floating IP it holds.
		c.OnAssign(f4.ID(), c.Server("beta").ID(), f4.Prefix())
		v, ok := c.metadataFor(f4.Addr())
		require.True(t, ok)
		assert.Equal(t, "beta", v.Summary.Hostname)
	})
}

func TestCrashAndRestore(t *testing.T) {
	c := newTestCloud(t, true, "alpha", "beta")
	ctx := ctxTimeout(t, 20*time.Second)
	alpha := c.Server("alpha")
	p, err := alpha.StartNameService(ctx, 80)
	require.NoError(t, err)
	url := "http://" + alpha.PublicIPv4().String() + "/"
	got, err := c.Get(ctxTimeout(t, 2*time.Second), url)
	require.NoError(t, err)
	require.Equal(t, "alpha", got)

	require.NoError(t, c.Crash("alpha"))
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("name service survived the crash")
	}
	// Nothing in the namespace survives, and nothing reaches it.
	assert.Empty(t, alpha.ns.pids())
	_, err = c.Get(ctxTimeout(t, 300*time.Millisecond), url)
	require.Error(t, err, "a crashed server must not answer")
	_, err = c.Server("beta").Get(ctxTimeout(t, 300*time.Millisecond), "http://10.0.0.2/")
	require.Error(t, err)

	require.NoError(t, c.Restore("alpha"))
	_, err = alpha.StartNameService(ctx, 80)
	require.NoError(t, err)
	got, err = c.Get(ctxTimeout(t, 2*time.Second), url)
	require.NoError(t, err)
	assert.Equal(t, "alpha", got)
}

// TestRestoreRoutesPrivateAddresses checks that a restored server is
// reachable on its private and alias IPs again, including changes made
// while it was down. The kernel deletes a router's routes through a veth
// when Crash takes the veth down, so Restore must put them back.
func TestRestoreRoutesPrivateAddresses(t *testing.T) {
	c := newTestCloud(t, true, "alpha", "beta")
	_, err := c.AddNetwork(NetworkSpec{Name: "net-b", Network: netip.MustParsePrefix("10.1.0.0/16"), Subnet: netip.MustParsePrefix("10.1.0.0/24")})
	require.NoError(t, err)
	require.NoError(t, c.AttachNetwork("beta", "net-b"))
	require.NoError(t, c.SetAliasIPs("alpha", "net-a", []netip.Addr{netip.MustParseAddr("10.0.0.20")}))
	ctx := ctxTimeout(t, 30*time.Second)
	alpha, beta := c.Server("alpha"), c.Server("beta")
	reach := func(ip string) error {
		got, err := beta.Get(ctxTimeout(t, 2*time.Second), "http://"+ip+"/")
		if err == nil && got != "alpha" {
			err = fmt.Errorf("%s answered instead of alpha", got)
		}
		return err
	}
	_, err = alpha.StartNameService(ctx, 80)
	require.NoError(t, err)
	for round := range 2 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			for _, ip := range []string{"10.0.0.2", "10.0.0.20"} {
				require.NoError(t, reach(ip), "before the crash: %s", ip)
			}
			require.NoError(t, c.Crash("alpha"))
			// Changes while crashed: a new alias IP, and a network
			// hot-attached to the crashed server (on round 1).
			require.NoError(t, c.SetAliasIPs("alpha", "net-a", []netip.Addr{netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.21")}))
			if round == 0 {
				require.NoError(t, c.AttachNetwork("alpha", "net-b"))
			}
			require.Error(t, reach("10.0.0.2"), "a crashed server must not answer")
			require.NoError(t, c.Restore("alpha"))
			_, err = alpha.StartNameService(ctx, 80)
			require.NoError(t, err)
			_, nets := alpha.Metadata()
			require.Len(t, nets, 2)
			for _, ip := range []string{"10.0.0.2", "10.0.0.20", "10.0.0.21", nets[1].IP.String()} {
				assert.NoError(t, reach(ip), "after the restore: %s", ip)
			}
		})
	}
}

func TestPauseFreezesAndResumes(t *testing.T) {
	c := newTestCloud(t, false, "alpha")
	ctx := ctxTimeout(t, 20*time.Second)
	alpha := c.Server("alpha")
	_, err := alpha.StartNameService(ctx, 80)
	require.NoError(t, err)
	url := "http://" + alpha.PublicIPv4().String() + "/"

	paused := make(chan error, 1)
	go func() { paused <- c.Pause(ctx, "alpha", 600*time.Millisecond) }()
	// A request sent while paused is answered only after the resume: it
	// neither fails nor answers within its short timeout while the process
	// is stopped, but a request with a longer timeout gets through.
	waitStopped(t, ctx, alpha)
	_, err = c.Get(ctxTimeout(t, 150*time.Millisecond), url)
	require.Error(t, err, "a paused server must not answer")
	got, err := c.Get(ctxTimeout(t, 5*time.Second), url)
	require.NoError(t, err)
	assert.Equal(t, "alpha", got)
	require.NoError(t, <-paused)
}

// waitStopped waits until every process of the server is stopped (state T).
func waitStopped(t *testing.T, ctx context.Context, s *Server) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		pids := s.ns.pids()
		stopped := len(pids) > 0
		for _, pid := range pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				stopped = false
				continue
			}
			i := strings.LastIndexByte(string(b), ')')
			if b[i+2] != 'T' {
				stopped = false
			}
		}
		if stopped {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("processes were not stopped")
		case <-tick.C:
		}
	}
}

func TestPartition(t *testing.T) {
	c := newTestCloud(t, true, "alpha", "beta", "gamma")
	ctx := ctxTimeout(t, 20*time.Second)
	for _, s := range c.Servers() {
		_, err := s.StartNameService(ctx, 80)
		require.NoError(t, err)
	}
	ip := map[string]string{"alpha": "10.0.0.2", "beta": "10.0.0.3", "gamma": "10.0.0.4"}
	reach := func(from, to string) bool {
		got, err := c.Server(from).Get(ctxTimeout(t, 300*time.Millisecond), "http://"+ip[to]+"/")
		return err == nil && got == to
	}
	pairs := [][2]string{{"alpha", "beta"}, {"beta", "alpha"}, {"alpha", "gamma"}, {"gamma", "beta"}}
	check := func(t *testing.T, blocked map[[2]string]bool) {
		for _, p := range pairs {
			assert.Equal(t, !blocked[p], reach(p[0], p[1]), "%s -> %s", p[0], p[1])
		}
	}
	t.Run("all connected", func(t *testing.T) { check(t, nil) })
	require.NoError(t, c.Partition("net-a", "alpha", "beta"))
	t.Run("alpha beta partitioned", func(t *testing.T) {
		check(t, map[[2]string]bool{{"alpha", "beta"}: true, {"beta", "alpha"}: true})
	})
	t.Run("alias ips follow the partition", func(t *testing.T) {
		require.NoError(t, c.SetAliasIPs("beta", "net-a", []netip.Addr{netip.MustParseAddr("10.0.0.20")}))
		get := func(from string) (string, error) {
			return c.Server(from).Get(ctxTimeout(t, 300*time.Millisecond), "http://10.0.0.20/")
		}
		_, err := get("alpha")
		assert.Error(t, err, "alpha must not reach beta's alias ip")
		got, err := get("gamma")
		require.NoError(t, err)
		assert.Equal(t, "beta", got)
	})
	require.NoError(t, c.Heal("net-a"))
	t.Run("healed", func(t *testing.T) { check(t, nil) })
}

func TestAttachDetachHotplug(t *testing.T) {
	c := newTestCloud(t, false, "alpha")
	_, err := c.AddNetwork(NetworkSpec{Name: "net-b", Network: netip.MustParsePrefix("192.168.0.0/16"), Subnet: netip.MustParsePrefix("192.168.5.0/24")})
	require.NoError(t, err)
	alpha := c.Server("alpha")
	privNICs := func() []string {
		links, err := alpha.NetlinkHandle().LinkList()
		require.NoError(t, err)
		var out []string
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().HardwareAddr.String(), "86:00:00:") {
				out = append(out, l.Attrs().Name+" "+l.Attrs().HardwareAddr.String())
			}
		}
		slices.Sort(out)
		return out
	}
	before := privNICs()
	require.Len(t, before, 1)

	require.NoError(t, c.AttachNetwork("alpha", "net-b"))
	after := privNICs()
	require.Len(t, after, 2)
	_, nets := alpha.Metadata()
	require.Len(t, nets, 2)
	assert.Equal(t, "net-b", nets[1].NetworkName)
	assert.Equal(t, 2, nets[1].InterfaceNum)
	assert.Equal(t, netip.MustParseAddr("192.168.5.2"), nets[1].IP)
	assert.Contains(t, after, "ens11 "+nets[1].MACAddress.String())
	got, err := alpha.Get(ctxTimeout(t, 2*time.Second), c.MetadataEndpoint()+"/private-networks")
	require.NoError(t, err)
	assert.Contains(t, got, "network_name: net-b")

	require.NoError(t, c.SetAliasIPs("alpha", "net-b", []netip.Addr{netip.MustParseAddr("192.168.5.9")}))
	_, nets = alpha.Metadata()
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.168.5.9")}, nets[1].AliasIPs)
	n := c.Network("net-b")
	r, err := n.router.nl.RouteGet(net.ParseIP("192.168.5.9"))
	require.NoError(t, err)
	require.Len(t, r, 1)
	l, err := n.router.nl.LinkByIndex(r[0].LinkIndex)
	require.NoError(t, err)
	assert.Equal(t, alpha.peer(), l.Attrs().Name)

	require.NoError(t, c.DetachNetwork("alpha", "net-b"))
	assert.Equal(t, before, privNICs())
	_, nets = alpha.Metadata()
	assert.Len(t, nets, 1)
	_, err = n.router.nl.LinkByName(alpha.peer())
	assert.ErrorAs(t, err, new(netlink.LinkNotFoundError))
}

// manualTimers replaces time.AfterFunc: fire runs the due functions.
type manualTimers struct {
	mu  sync.Mutex
	fns []func()
}

type manualTimer struct{}

func (manualTimer) Stop() bool { return true }

func (m *manualTimers) afterFunc(_ time.Duration, f func()) interface{ Stop() bool } {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fns = append(m.fns, f)
	return manualTimer{}
}

func (m *manualTimers) fire() {
	m.mu.Lock()
	fns := m.fns
	m.fns = nil
	m.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

func TestMetadataLag(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simcloud needs root to create network namespaces; run the tests as root")
	}
	timers := &manualTimers{}
	c, err := New(t.Context(), WithMetadataLag(time.Second), func(o *options) { o.afterFunc = timers.afterFunc })
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	_, err = c.AddNetwork(NetworkSpec{Name: "net-a", Network: mustPrefix("10.0.0.0/16")})
	require.NoError(t, err)
	s, err := c.AddServer(ServerSpec{Name: "alpha"})
	require.NoError(t, err)
	names := func() []string {
		_, nets := s.Metadata()
		var out []string
		for _, n := range nets {
			out = append(out, fmt.Sprintf("%s %s %v", n.NetworkName, n.IP, n.AliasIPs))
		}
		return out
	}
	hasNIC := func() bool {
		_, err := s.NetlinkHandle().LinkByName("ens10")
		return err == nil
	}
	steps := []struct {
		name   string
		op     func() error
		nic    bool
		before []string // metadata before the lag passed
		after  []string // and after
	}{
		{"attach", func() error { return c.AttachNetwork("alpha", "net-a") }, true, nil, []string{"net-a 10.0.0.2 []"}},
		{"alias", func() error {
			return c.SetAliasIPs("alpha", "net-a", []netip.Addr{netip.MustParseAddr("10.0.0.9")})
		}, true, []string{"net-a 10.0.0.2 []"}, []string{"net-a 10.0.0.2 [10.0.0.9]"}},
		{"detach", func() error { return c.DetachNetwork("alpha", "net-a") }, false, []string{"net-a 10.0.0.2 [10.0.0.9]"}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.NoError(t, st.op())
			assert.Equal(t, st.nic, hasNIC(), "the NIC changes at once")
			assert.Equal(t, st.before, names(), "metadata before the lag")
			timers.fire()
			assert.Equal(t, st.after, names(), "metadata after the lag")
		})
	}
}
