package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// fakePrivateHost is a stateful PrivateHost: the VIPs configured per MAC,
// rendered as sorted text.
type fakePrivateHost struct {
	mu   sync.Mutex
	vips map[string]bool // "mac ip"
	fail error
}

func newFakePrivateHost() *fakePrivateHost { return &fakePrivateHost{vips: map[string]bool{}} }

func (f *fakePrivateHost) AddVIP(_ context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.vips[mac.String()+" "+ip.String()] = true
	return nil
}

func (f *fakePrivateHost) RemoveVIP(_ context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	delete(f.vips, mac.String()+" "+ip.String())
	return nil
}

func (f *fakePrivateHost) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.vips {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

var (
	privNet    = netip.MustParsePrefix("10.0.0.0/16")
	privSubnet = netip.MustParsePrefix("10.0.1.0/24")
	ipA        = netip.MustParseAddr("10.0.1.2")
	ipB        = netip.MustParseAddr("10.0.1.3")
	ipC        = netip.MustParseAddr("10.0.1.4")
	aliasVIP   = netip.MustParseAddr("10.0.1.100")
	aliasVIP2  = netip.MustParseAddr("10.0.1.101")
	routeVIP   = netip.MustParseAddr("10.0.2.50")
	macA       = net.HardwareAddr{0x86, 0, 0, 0, 0, 0xa}
	otherA     = netip.MustParseAddr("10.0.1.10")
	otherB     = netip.MustParseAddr("10.0.1.11")
)

// privateRig is the simulated API with one network and three servers:
// A (this server, 10.0.1.2, alias 10.0.1.10), B (10.0.1.3, alias
// 10.0.1.11) and C (10.0.1.4), and a client for it.
type privateRig struct {
	sim     *cloudapitest.Sim
	api     *cloudapi.Client
	net     int64
	a, b, c int64
	host    *fakePrivateHost
}

func newPrivateRig(t *testing.T) *privateRig {
	t.Helper()
	sim := cloudapitest.New(cloudapitest.WithTokens("token"), cloudapitest.WithActionDelay(time.Second))
	t.Cleanup(sim.Close)
	api := cloudapi.New("token", cloudapi.WithEndpoint("http://sim/v1"),
		cloudapi.WithHTTPClient(&http.Client{Transport: sim.Transport()}))
	r := &privateRig{sim: sim, api: api, host: newFakePrivateHost()}
	r.net = sim.AddNetwork(cloudapitest.Network{Name: "db-net", IPRange: privNet, Subnets: []cloudapitest.Subnet{{IPRange: privSubnet}}})
	r.a = sim.AddServer(cloudapitest.Server{Name: "a", PrivateNets: []cloudapitest.PrivateNet{{NetworkID: r.net, IP: ipA, AliasIPs: []netip.Addr{otherA}, MACAddress: macA.String()}}})
	r.b = sim.AddServer(cloudapitest.Server{Name: "b", PrivateNets: []cloudapitest.PrivateNet{{NetworkID: r.net, IP: ipB, AliasIPs: []netip.Addr{otherB}, MACAddress: "86:00:00:00:00:0b"}}})
	r.c = sim.AddServer(cloudapitest.Server{Name: "c", PrivateNets: []cloudapitest.PrivateNet{{NetworkID: r.net, IP: ipC, MACAddress: "86:00:00:00:00:0c"}}})
	return r
}

func (r *privateRig) cfg(vips ...netip.Addr) PrivateVIPsConfig {
	c := PrivateVIPsConfig{Self: r.a, ActionTimeout: time.Minute, Host: r.host}
	for _, v := range vips {
		c.VIPs = append(c.VIPs, PrivateVIP{IP: v, NetworkID: r.net, MAC: macA, SelfIP: ipA})
	}
	return c
}

func (r *privateRig) requests() int { return len(r.sim.RequestLog()) }

// assertHolder reads h's holder and checks it.
func assertHolder(t *testing.T, h Handler, want int64, msg ...any) {
	t.Helper()
	got, err := h.Holder(context.Background())
	require.NoError(t, err)
	assert.Equal(t, want, got, msg...)
}

// alias and route return a handler of the rig's VIPs after its first read.
func (r *privateRig) alias(t *testing.T, vips ...netip.Addr) *AliasIPs {
	t.Helper()
	h, err := NewAliasIPs(r.cfg(vips...), r.api)
	require.NoError(t, err)
	_, err = h.Holder(context.Background())
	require.NoError(t, err)
	return h
}

func (r *privateRig) route(t *testing.T, vips ...netip.Addr) *RouteIPs {
	t.Helper()
	h, err := NewRouteIPs(r.cfg(vips...), r.api)
	require.NoError(t, err)
	_, err = h.Holder(context.Background())
	require.NoError(t, err)
	return h
}

func TestAliasIPsMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{otherB, aliasVIP})
		var changed []string
		cfg := r.cfg(aliasVIP)
		cfg.Changed = func(vip netip.Addr, configured, assigned bool) {
			changed = append(changed, fmt.Sprintf("%s configured=%v assigned=%v", vip, configured, assigned))
		}
		h, err := NewAliasIPs(cfg, r.api)
		require.NoError(t, err)
		assert.Equal(t, KindAliasIP, h.Kind())

		assertHolder(t, h, r.b)

		// The group's order: configure first, then acquire, then verify.
		require.NoError(t, h.Configure(ctx))
		assert.Equal(t, "86:00:00:00:00:0a 10.0.1.100", r.host.String())
		require.NoError(t, h.Acquire(ctx))
		assertHolder(t, h, r.a)

		// Every other alias of both servers stays.
		assert.Equal(t, []netip.Addr{otherA, aliasVIP}, r.sim.AliasIPs(r.a, r.net))
		assert.Equal(t, []netip.Addr{otherB}, r.sim.AliasIPs(r.b, r.net))
		assert.Empty(t, r.sim.AliasIPs(r.c, r.net))

		// Held here: Acquire sends nothing.
		n := r.requests()
		require.NoError(t, h.Acquire(ctx))
		assert.Equal(t, n, r.requests())

		// A DHCP client flushed the VIP from the NIC: the next read puts
		// it back.
		require.NoError(t, r.host.RemoveVIP(ctx, macA, aliasVIP))
		_, err = h.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, "86:00:00:00:00:0a 10.0.1.100", r.host.String())

		st := h.Status()
		require.Len(t, st, 1)
		assert.Equal(t, AddressStatus{ID: r.net, IP: "10.0.1.100", HolderByAPI: r.a, ReadAt: st[0].ReadAt, ConfiguredHere: true, Kind: KindAliasIP}, st[0])

		require.NoError(t, h.Unconfigure(ctx))
		require.NoError(t, h.Unconfigure(ctx), "idempotent")
		assert.Empty(t, r.host.String())
		assert.Equal(t, []string{
			"10.0.1.100 configured=false assigned=false",
			"10.0.1.100 configured=true assigned=false",
			"10.0.1.100 configured=true assigned=true",
			"10.0.1.100 configured=true assigned=true",
			"10.0.1.100 configured=false assigned=true",
		}, changed)
	})
}

func TestAliasIPsFromNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		h, err := NewAliasIPs(r.cfg(aliasVIP, aliasVIP2), r.api)
		require.NoError(t, err)
		holder, err := h.Holder(ctx)
		require.NoError(t, err)
		assert.Zero(t, holder)
		require.NoError(t, h.Acquire(ctx))
		assert.Equal(t, []netip.Addr{otherA, aliasVIP, aliasVIP2}, r.sim.AliasIPs(r.a, r.net), "one change for both VIPs of the network")
		assertHolder(t, h, r.a)
	})
}

// TestAliasIPsServerSelector: with the group's selector a read is one
// page of the group's servers; all servers only when that does not say
// who holds.
func TestAliasIPsServerSelector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		for _, id := range []int64{r.a, r.b} {
			r.sim.SetServerLabels(id, map[string]string{"role": "db"})
		}
		cfg := r.cfg(aliasVIP)
		cfg.ServerSelector = "role=db"
		h, err := NewAliasIPs(cfg, r.api)
		require.NoError(t, err)
		lists := func(do func()) []string {
			n := len(r.sim.RequestLog())
			do()
			var out []string
			for _, rec := range r.sim.RequestLog()[n:] {
				if rec.Path == "/servers" {
					out = append(out, rec.Query)
				}
			}
			return out
		}
		read := func() { _, err := h.Holder(ctx); require.NoError(t, err) }

		// Nobody holds it: the group's servers do not settle it.
		assert.Len(t, lists(read), 2)
		// A group member holds it: one list.
		r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{otherB, aliasVIP})
		got := lists(read)
		assert.Len(t, got, 1)
		assert.Contains(t, got[0], "label_selector=role")
		assertHolder(t, h, r.b)
		// A server outside the group holds it: it must be seen.
		r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{otherB})
		r.sim.SetAliasIPs(r.c, r.net, []netip.Addr{aliasVIP})
		assert.Len(t, lists(read), 2)
		assertHolder(t, h, r.c)
		require.NoError(t, h.Acquire(ctx))
		assertHolder(t, h, r.a)
		assert.Empty(t, r.sim.AliasIPs(r.c, r.net))
	})
}

// TestAliasIPsStaleRead: another server got the VIP after Holder read (it
// won a race): the API refuses it here and Acquire does not take it back;
// the group's verifying read tells the loser.
func TestAliasIPsStaleRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		h := r.alias(t, aliasVIP)
		r.sim.SetAliasIPs(r.c, r.net, []netip.Addr{aliasVIP})
		err := h.Acquire(ctx)
		require.Error(t, err)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeIPNotAvailable), "%v", err)
		assert.NotErrorIs(t, err, ErrMoveFailed, "lost, not failed")
		assert.Equal(t, []netip.Addr{otherA}, r.sim.AliasIPs(r.a, r.net))
		assert.Equal(t, []netip.Addr{aliasVIP}, r.sim.AliasIPs(r.c, r.net))
		assertHolder(t, h, r.c)
	})
}

// TestAliasIPsDeadHolder: the old holder is off; the API still changes its
// attachment.
func TestAliasIPsDeadHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{aliasVIP, otherB})
		r.sim.SetServerStatus(r.b, "off")
		h := r.alias(t, aliasVIP)
		require.NoError(t, h.Acquire(ctx))
		assert.Equal(t, []netip.Addr{otherB}, r.sim.AliasIPs(r.b, r.net))
		assert.Equal(t, []netip.Addr{otherA, aliasVIP}, r.sim.AliasIPs(r.a, r.net))
	})
}

func TestAliasIPsFaults(t *testing.T) {
	t.Run("add action ends in error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			h := r.alias(t, aliasVIP)
			r.sim.FailActions(1)
			err := h.Acquire(ctx)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMoveFailed, "the API ran the move and it failed")
			assert.Equal(t, []netip.Addr{otherA}, r.sim.AliasIPs(r.a, r.net), "nothing changed")
			// After recovery the move completes.
			require.NoError(t, h.Acquire(ctx))
			assertHolder(t, h, r.a)
		})
	})
	t.Run("removal from the old holder ends in error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{otherB, aliasVIP})
			h := r.alias(t, aliasVIP)
			r.sim.FailActions(1)
			n := r.requests()
			err := h.Acquire(ctx)
			assert.ErrorIs(t, err, ErrMoveFailed, "our move failed: retried soon, no back-off as after a loss")
			var changes []string
			for _, rec := range r.sim.RequestLog()[n:] {
				if strings.HasSuffix(rec.Path, "/change_alias_ips") {
					changes = append(changes, rec.Path)
				}
			}
			assert.Equal(t, []string{fmt.Sprintf("/servers/%d/actions/change_alias_ips", r.b)}, changes, "no add that the API would refuse")
			assert.Equal(t, []netip.Addr{otherB, aliasVIP}, r.sim.AliasIPs(r.b, r.net))
			_, err = h.Holder(ctx)
			require.NoError(t, err)
			require.NoError(t, h.Acquire(ctx))
			assert.Equal(t, []netip.Addr{otherA, aliasVIP}, r.sim.AliasIPs(r.a, r.net))
			assert.Equal(t, []netip.Addr{otherB}, r.sim.AliasIPs(r.b, r.net))
		})
	})
	t.Run("server errors", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			r.sim.SetAliasIPs(r.b, r.net, []netip.Addr{otherB, aliasVIP})
			h := r.alias(t, aliasVIP)
			r.sim.FailNext("POST /servers/*/actions/change_alias_ips", http.StatusServiceUnavailable, "unavailable", 100)
			err := h.Acquire(ctx)
			require.Error(t, err)
			assert.NotErrorIs(t, err, ErrMoveFailed, "a refused call is not a failed move")
			assert.Equal(t, []netip.Addr{otherB, aliasVIP}, r.sim.AliasIPs(r.b, r.net))
		})
	})
}

// aliasFake is a stateful AliasCloud for what the simulator does not do:
// a server missing from the list.
type aliasFake struct {
	servers []cloudapi.Server
	changes []string
}

func (f *aliasFake) ListServers(context.Context, string) ([]cloudapi.Server, error) {
	return slices.Clone(f.servers), nil
}

func (f *aliasFake) ChangeAliasIPs(_ context.Context, server, network int64, ips []netip.Addr) (cloudapi.Action, error) {
	f.changes = append(f.changes, fmt.Sprintf("server %d network %d %v", server, network, ips))
	return cloudapi.Action{ID: 1, Status: "success"}, nil
}

func (f *aliasFake) WaitAction(context.Context, int64) (cloudapi.Action, error) {
	return cloudapi.Action{ID: 1, Status: "success"}, nil
}

func TestAliasIPsNeverSendsAnUnreadList(t *testing.T) {
	ctx := context.Background()
	// This server is not in the listing (not attached yet): sending [vip]
	// would wipe whatever its attachment has.
	f := &aliasFake{servers: []cloudapi.Server{{ID: 2, PrivateNets: []cloudapi.PrivateNet{{NetworkID: 7, IP: ipB}}}}}
	h, err := NewAliasIPs(PrivateVIPsConfig{Self: 1, ActionTimeout: time.Second, Host: newFakePrivateHost(),
		VIPs: []PrivateVIP{{IP: aliasVIP, NetworkID: 7, MAC: macA, SelfIP: ipA}}}, f)
	require.NoError(t, err)
	_, err = h.Holder(ctx)
	require.NoError(t, err)
	err = h.Acquire(ctx)
	require.ErrorContains(t, err, "change alias ips of server 1 in network 7: its alias list was not read")
	assert.Empty(t, f.changes)
}

func TestNewPrivateHandlersValidate(t *testing.T) {
	_, err := NewAliasIPs(PrivateVIPsConfig{}, &aliasFake{})
	require.Error(t, err)
	for _, want := range []string{"new alias_ip handler", "no private vips", "host is required", "unknown server id", "action timeout must be > 0"} {
		assert.ErrorContains(t, err, want)
	}
	_, err = NewRouteIPs(PrivateVIPsConfig{Self: 1, ActionTimeout: time.Second, Host: newFakePrivateHost(),
		VIPs: []PrivateVIP{{IP: routeVIP}}}, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "private vip 10.0.2.50: ip, network, mac and own ip are required")
}

func TestRouteIPsMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		r.sim.AddNetwork(cloudapitest.Network{}) // another network, not ours
		dst := netip.PrefixFrom(routeVIP, 32)
		other := cloudapitest.Route{Destination: netip.MustParsePrefix("10.0.9.0/24"), Gateway: ipC}
		setRoutes(t, r, []cloudapitest.Route{other, {Destination: dst, Gateway: ipB}})

		h, err := NewRouteIPs(r.cfg(routeVIP), r.api)
		require.NoError(t, err)
		assert.Equal(t, KindRouteIP, h.Kind())
		assertHolder(t, h, r.b)

		require.NoError(t, h.Configure(ctx))
		assert.Equal(t, "86:00:00:00:00:0a 10.0.2.50", r.host.String())
		require.NoError(t, h.Acquire(ctx))
		assertHolder(t, h, r.a)
		n, _ := r.sim.Network(r.net)
		assert.Equal(t, []cloudapitest.Route{other, {Destination: dst, Gateway: ipA}}, n.Routes, "one route for the VIP; others untouched")

		// Steady state costs one GET /networks/{id} per read: the
		// gateways' servers are cached.
		before := r.requests()
		_, err = h.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, before+1, r.requests())
		// Held here: Acquire sends nothing.
		require.NoError(t, h.Acquire(ctx))
		assert.Equal(t, before+1, r.requests())

		st := h.Status()
		require.Len(t, st, 1)
		assert.Equal(t, KindRouteIP, st[0].Kind)
		assert.Equal(t, r.a, st[0].HolderByAPI)
	})
}

// setRoutes replaces the routes of the rig's network through the API.
func setRoutes(t *testing.T, r *privateRig, routes []cloudapitest.Route) {
	t.Helper()
	ctx := context.Background()
	for _, rt := range routes {
		a, err := r.api.AddRoute(ctx, r.net, cloudapi.Route{Destination: rt.Destination, Gateway: rt.Gateway})
		require.NoError(t, err)
		_, err = r.api.WaitAction(ctx, a.ID)
		require.NoError(t, err)
	}
}

func TestRouteIPsNoRouteAndUnknownGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		h, err := NewRouteIPs(r.cfg(routeVIP), r.api)
		require.NoError(t, err)
		holder, err := h.Holder(ctx)
		require.NoError(t, err)
		assert.Zero(t, holder, "no route: nobody holds it")
		require.NoError(t, h.Acquire(ctx))
		assertHolder(t, h, r.a)
	})
}

func TestRouteIPsInsideSubnet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newPrivateRig(t)
		h, err := NewRouteIPs(r.cfg(aliasVIP), r.api)
		require.NoError(t, err)
		_, err = h.Holder(ctx)
		require.ErrorContains(t, err, "route vip 10.0.1.100 lies inside subnet 10.0.1.0/24 of network")
	})
}

func TestRouteIPsFaults(t *testing.T) {
	t.Run("add action ends in error, then recovers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			setRoutes(t, r, []cloudapitest.Route{{Destination: netip.PrefixFrom(routeVIP, 32), Gateway: ipB}})
			h := r.route(t, routeVIP)
			r.sim.FailActions(1) // the delete
			err := h.Acquire(ctx)
			assert.ErrorIs(t, err, ErrMoveFailed)
			assertHolder(t, h, r.b, "a failed delete leaves the old route")
			require.NoError(t, h.Acquire(ctx))
			assertHolder(t, h, r.a)
		})
	})
	t.Run("route gone before the delete", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			setRoutes(t, r, []cloudapitest.Route{{Destination: netip.PrefixFrom(routeVIP, 32), Gateway: ipB}})
			h := r.route(t, routeVIP)
			a, err := r.api.DeleteRoute(ctx, r.net, cloudapi.Route{Destination: netip.PrefixFrom(routeVIP, 32), Gateway: ipB})
			require.NoError(t, err)
			_, err = r.api.WaitAction(ctx, a.ID)
			require.NoError(t, err)
			require.NoError(t, h.Acquire(ctx), "not_found on the delete is what we wanted")
			assertHolder(t, h, r.a)
		})
	})
	t.Run("locked network", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			r := newPrivateRig(t)
			h := r.route(t, routeVIP)
			r.sim.FailNext("POST /networks/*/actions/add_route", http.StatusLocked, "locked", 2)
			require.NoError(t, h.Acquire(ctx), "the client retries locked")
			assertHolder(t, h, r.a)
		})
	})
}

// stubHandler is a Handler with a fixed holder and error, recording calls.
type stubHandler struct {
	kind    AddressKind
	holder  int64
	err     error
	acquire error
	calls   *[]string
}

func (s stubHandler) Kind() AddressKind { return s.kind }
func (s stubHandler) Holder(context.Context) (int64, error) {
	*s.calls = append(*s.calls, string(s.kind)+" holder")
	return s.holder, s.err
}
func (s stubHandler) Configure(context.Context) error {
	*s.calls = append(*s.calls, string(s.kind)+" configure")
	return nil
}
func (s stubHandler) Unconfigure(context.Context) error {
	*s.calls = append(*s.calls, string(s.kind)+" unconfigure")
	return nil
}
func (s stubHandler) Acquire(context.Context) error {
	*s.calls = append(*s.calls, string(s.kind)+" acquire")
	return s.acquire
}
func (s stubHandler) Status() []AddressStatus {
	return []AddressStatus{{IP: string(s.kind)}}
}

func TestHandlers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		holders []int64
		want    int64
	}{
		{name: "all here", holders: []int64{1, 1}, want: 1},
		{name: "all elsewhere", holders: []int64{2, 2}, want: 2},
		{name: "half moved", holders: []int64{1, 2}, want: 2},
		{name: "half unassigned", holders: []int64{1, 0}, want: 0},
		{name: "unassigned then elsewhere", holders: []int64{0, 3}, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			hs := Handlers{Self: 1, List: []Handler{
				stubHandler{kind: KindFloatingIP, holder: tc.holders[0], calls: &calls},
				stubHandler{kind: KindAliasIP, holder: tc.holders[1], calls: &calls},
			}}
			got, err := hs.Holder(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	var calls []string
	fip := stubHandler{kind: KindFloatingIP, holder: 1, calls: &calls}
	alias := stubHandler{kind: KindAliasIP, holder: 1, calls: &calls}
	hs := Handlers{Self: 1, List: []Handler{fip, alias}}
	assert.Equal(t, KindMixed, hs.Kind())
	assert.Equal(t, KindAliasIP, Handlers{Self: 1, List: []Handler{alias, alias}}.Kind())
	require.NoError(t, hs.Configure(ctx))
	require.NoError(t, hs.Acquire(ctx))
	require.NoError(t, hs.Unconfigure(ctx))
	assert.Equal(t, []string{"floating_ip configure", "alias_ip configure", "floating_ip acquire", "alias_ip acquire", "floating_ip unconfigure", "alias_ip unconfigure"}, calls)
	assert.Equal(t, []AddressStatus{{IP: "floating_ip", Kind: KindFloatingIP}, {IP: "alias_ip", Kind: KindAliasIP}}, hs.Status())

	// An error reading one makes the holder unknown.
	broken := stubHandler{kind: KindRouteIP, err: errors.New("api down"), calls: &calls}
	_, err := Handlers{Self: 1, List: []Handler{fip, broken}}.Holder(ctx)
	require.ErrorContains(t, err, "api down")

	// ErrMoveFailed only when every failure was a failed move.
	failedMove := fmt.Errorf("x: %w", errors.Join(ErrMoveFailed, errors.New("action 3 failed")))
	refused := &cloudapi.Error{Op: "change alias ips", Code: cloudapi.CodeLocked}
	both := Handlers{Self: 1, List: []Handler{
		stubHandler{kind: KindFloatingIP, acquire: errors.Join(ErrMoveFailed, errors.New("action 3 failed")), calls: &calls},
		stubHandler{kind: KindAliasIP, acquire: failedMove, calls: &calls},
	}}
	assert.ErrorIs(t, both.Acquire(ctx), ErrMoveFailed)
	mixed := Handlers{Self: 1, List: []Handler{
		stubHandler{kind: KindFloatingIP, acquire: errors.Join(ErrMoveFailed, errors.New("action 3 failed")), calls: &calls},
		stubHandler{kind: KindAliasIP, acquire: refused, calls: &calls},
	}}
	err = mixed.Acquire(ctx)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrMoveFailed)
	assert.True(t, cloudapi.IsError(err, cloudapi.CodeLocked))
	assert.Contains(t, err.Error(), "action 3 failed")
}
