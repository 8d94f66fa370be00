package cloudapi_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

var (
	mustAddr   = netip.MustParseAddr
	mustPrefix = netip.MustParsePrefix
)

// privateWorld is a network 10.0.0.0/16 with subnet 10.0.1.0/24 and two
// servers: a (10.0.1.2, aliases 10.0.1.10 and the VIP 10.0.1.100) and b
// (10.0.1.3, alias 10.0.1.20).
type privateWorld struct {
	sim      *cloudapitest.Sim
	c        *cloudapi.Client
	net      int64
	a, b     int64
	aIP, bIP netip.Addr
}

func newPrivateWorld(t *testing.T, simOpts ...cloudapitest.Option) privateWorld {
	s, c := newClient(t, simOpts)
	w := privateWorld{sim: s, c: c, aIP: mustAddr("10.0.1.2"), bIP: mustAddr("10.0.1.3")}
	w.net = s.AddNetwork(cloudapitest.Network{Name: "net-a", IPRange: mustPrefix("10.0.0.0/16"),
		Subnets: []cloudapitest.Subnet{{IPRange: mustPrefix("10.0.1.0/24")}}, Labels: map[string]string{"env": "test"}})
	w.a = s.AddServer(cloudapitest.Server{Name: "a", PrivateNets: []cloudapitest.PrivateNet{{NetworkID: w.net, IP: w.aIP,
		AliasIPs: []netip.Addr{mustAddr("10.0.1.10"), mustAddr("10.0.1.100")}}}})
	w.b = s.AddServer(cloudapitest.Server{Name: "b", PrivateNets: []cloudapitest.PrivateNet{{NetworkID: w.net, IP: w.bIP,
		AliasIPs: []netip.Addr{mustAddr("10.0.1.20")}}}})
	return w
}

func TestGetAndListNetworks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newPrivateWorld(t)
		ctx := context.Background()
		want := cloudapi.Network{
			ID: w.net, Name: "net-a", IPRange: mustPrefix("10.0.0.0/16"),
			Subnets: []cloudapi.Subnet{{Type: "cloud", IPRange: mustPrefix("10.0.1.0/24"), NetworkZone: "eu-central", Gateway: mustAddr("10.0.0.1")}},
			Servers: []int64{w.a, w.b},
			Labels:  map[string]string{"env": "test"},
		}
		got, err := w.c.GetNetwork(ctx, w.net)
		require.NoError(t, err)
		assert.Equal(t, want, got)

		list, err := w.c.ListNetworks(ctx, "env=test")
		require.NoError(t, err)
		assert.Equal(t, []cloudapi.Network{want}, list)
		list, err = w.c.ListNetworks(ctx, "env=prod")
		require.NoError(t, err)
		assert.Empty(t, list)

		_, err = w.c.GetNetwork(ctx, 4242)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeNotFound), "%v", err)
	})
}

func TestChangeAliasIPs(t *testing.T) {
	tests := []struct {
		name     string
		server   func(w privateWorld) int64
		network  func(w privateWorld) int64
		ips      []string
		wantCode string // "" = accepted
		wantA    []string
		wantB    []string
	}{
		{name: "replaces the whole list", server: func(w privateWorld) int64 { return w.b }, ips: []string{"10.0.1.21"},
			wantA: []string{"10.0.1.10", "10.0.1.100"}, wantB: []string{"10.0.1.21"}},
		{name: "empty list clears", server: func(w privateWorld) int64 { return w.a }, ips: []string{},
			wantA: []string{}, wantB: []string{"10.0.1.20"}},
		{name: "alias held by another server", server: func(w privateWorld) int64 { return w.b }, ips: []string{"10.0.1.20", "10.0.1.100"},
			wantCode: cloudapi.CodeIPNotAvailable, wantA: []string{"10.0.1.10", "10.0.1.100"}, wantB: []string{"10.0.1.20"}},
		{name: "another server's own ip", server: func(w privateWorld) int64 { return w.b }, ips: []string{"10.0.1.2"},
			wantCode: cloudapi.CodeIPNotAvailable, wantA: []string{"10.0.1.10", "10.0.1.100"}, wantB: []string{"10.0.1.20"}},
		{name: "outside every subnet", server: func(w privateWorld) int64 { return w.b }, ips: []string{"10.0.2.5"},
			wantCode: cloudapi.CodeInvalidInput, wantA: []string{"10.0.1.10", "10.0.1.100"}, wantB: []string{"10.0.1.20"}},
		{name: "not attached", server: func(w privateWorld) int64 { return w.b }, network: func(privateWorld) int64 { return 999 }, ips: []string{"10.0.1.30"},
			wantCode: cloudapi.CodeServerNotAttachedToNetwork, wantA: []string{"10.0.1.10", "10.0.1.100"}, wantB: []string{"10.0.1.20"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newPrivateWorld(t, cloudapitest.WithActionDelay(time.Second))
				ctx := context.Background()
				network := w.net
				if tc.network != nil {
					network = tc.network(w)
				}
				ips := addrs(tc.ips)
				act, err := w.c.ChangeAliasIPs(ctx, tc.server(w), network, ips)
				if tc.wantCode != "" {
					assert.True(t, cloudapi.IsError(err, tc.wantCode), "got %v, want code %s", err, tc.wantCode)
				} else {
					require.NoError(t, err)
					assert.Equal(t, "change_alias_ips", act.Command)
					assert.Equal(t, "running", act.Status)
					_, err = w.c.WaitAction(ctx, act.ID)
					require.NoError(t, err)
				}
				for _, s := range []struct {
					id   int64
					want []string
				}{{w.a, tc.wantA}, {w.b, tc.wantB}} {
					srv, err := w.c.GetServer(ctx, s.id)
					require.NoError(t, err)
					got := []netip.Addr{}
					for _, pn := range srv.PrivateNets {
						got = append(got, pn.AliasIPs...)
					}
					assert.Equal(t, addrs(s.want), got, "alias ips of server %d", s.id)
				}
			})
		})
	}
}

func addrs(ss []string) []netip.Addr {
	out := []netip.Addr{}
	for _, s := range ss {
		out = append(out, mustAddr(s))
	}
	return out
}

// TestMoveAliasReadModifyWrite moves the VIP from a to b the way the
// platform requires: remove it from a's list, wait, add it to b's, wait.
// Every other alias of both servers stays, and the hook sees both changes
// in order.
func TestMoveAliasReadModifyWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newPrivateWorld(t, cloudapitest.WithActionDelay(time.Second))
		type change struct {
			server int64
			ips    []netip.Addr
		}
		var seen []change
		w.sim.OnAliasIPs(func(serverID, networkID int64, ips []netip.Addr) {
			seen = append(seen, change{serverID, ips})
		})
		ctx := context.Background()
		vip := mustAddr("10.0.1.100")

		_, err := w.c.ChangeAliasIPs(ctx, w.b, w.net, []netip.Addr{mustAddr("10.0.1.20"), vip})
		require.True(t, cloudapi.IsError(err, cloudapi.CodeIPNotAvailable), "adding first is refused: %v", err)

		act, err := w.c.ChangeAliasIPs(ctx, w.a, w.net, []netip.Addr{mustAddr("10.0.1.10")})
		require.NoError(t, err)
		_, err = w.c.WaitAction(ctx, act.ID)
		require.NoError(t, err)
		act, err = w.c.ChangeAliasIPs(ctx, w.b, w.net, []netip.Addr{mustAddr("10.0.1.20"), vip})
		require.NoError(t, err)
		_, err = w.c.WaitAction(ctx, act.ID)
		require.NoError(t, err)

		assert.Equal(t, addrs([]string{"10.0.1.10"}), w.sim.AliasIPs(w.a, w.net))
		assert.Equal(t, addrs([]string{"10.0.1.20", "10.0.1.100"}), w.sim.AliasIPs(w.b, w.net))
		assert.Equal(t, []change{{w.a, addrs([]string{"10.0.1.10"})}, {w.b, addrs([]string{"10.0.1.20", "10.0.1.100"})}}, seen)
	})
}

func TestChangeAliasIPsLockedAndFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newPrivateWorld(t, cloudapitest.WithActionDelay(2*time.Second))
		ctx := context.Background()
		first, err := w.c.ChangeAliasIPs(ctx, w.b, w.net, addrs([]string{"10.0.1.21"}))
		require.NoError(t, err)
		start := time.Now()
		second, err := w.c.ChangeAliasIPs(ctx, w.b, w.net, addrs([]string{"10.0.1.22"}))
		require.NoError(t, err, "locked is retried until the first action finished")
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second)
		_, err = w.c.WaitAction(ctx, first.ID)
		require.NoError(t, err)
		_, err = w.c.WaitAction(ctx, second.ID)
		require.NoError(t, err)
		assert.Equal(t, addrs([]string{"10.0.1.22"}), w.sim.AliasIPs(w.b, w.net))

		w.sim.FailNext("POST /servers/*/actions/change_alias_ips", http.StatusServiceUnavailable, "unavailable", 2)
		act, err := w.c.ChangeAliasIPs(ctx, w.b, w.net, addrs([]string{"10.0.1.23"}))
		require.NoError(t, err, "5xx is retried")
		_, err = w.c.WaitAction(ctx, act.ID)
		require.NoError(t, err)

		w.sim.FailActions(1)
		act, err = w.c.ChangeAliasIPs(ctx, w.b, w.net, addrs([]string{"10.0.1.24"}))
		require.NoError(t, err)
		_, err = w.c.WaitAction(ctx, act.ID)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeActionFailed), "%v", err)
		assert.Equal(t, addrs([]string{"10.0.1.23"}), w.sim.AliasIPs(w.b, w.net), "a failed action changes nothing")
	})
}

func TestRoutes(t *testing.T) {
	vip := mustPrefix("10.0.2.50/32")
	tests := []struct {
		name     string
		route    cloudapi.Route
		wantCode string
	}{
		{"route vip", cloudapi.Route{Destination: vip, Gateway: mustAddr("10.0.1.2")}, ""},
		{"default route", cloudapi.Route{Destination: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.1.2")}, ""},
		{"172.16/12", cloudapi.Route{Destination: mustPrefix("172.20.0.0/16"), Gateway: mustAddr("10.0.1.2")}, ""},
		{"public destination", cloudapi.Route{Destination: mustPrefix("198.51.100.7/32"), Gateway: mustAddr("10.0.1.2")}, cloudapi.CodeInvalidInput},
		{"inside a subnet", cloudapi.Route{Destination: mustPrefix("10.0.1.100/32"), Gateway: mustAddr("10.0.1.2")}, cloudapi.CodeInvalidInput},
		{"covers a subnet", cloudapi.Route{Destination: mustPrefix("10.0.0.0/8"), Gateway: mustAddr("10.0.1.2")}, cloudapi.CodeInvalidInput},
		{"gateway is the first address", cloudapi.Route{Destination: vip, Gateway: mustAddr("10.0.0.1")}, cloudapi.CodeInvalidInput},
		{"gateway is 172.31.1.1", cloudapi.Route{Destination: vip, Gateway: mustAddr("172.31.1.1")}, cloudapi.CodeInvalidInput},
		{"gateway outside the network", cloudapi.Route{Destination: vip, Gateway: mustAddr("192.168.0.2")}, cloudapi.CodeInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newPrivateWorld(t, cloudapitest.WithActionDelay(time.Second))
				ctx := context.Background()
				act, err := w.c.AddRoute(ctx, w.net, tc.route)
				var want []cloudapi.Route
				if tc.wantCode != "" {
					assert.True(t, cloudapi.IsError(err, tc.wantCode), "got %v, want code %s", err, tc.wantCode)
				} else {
					require.NoError(t, err)
					assert.Equal(t, "add_route", act.Command)
					_, err = w.c.WaitAction(ctx, act.ID)
					require.NoError(t, err)
					want = []cloudapi.Route{tc.route}
				}
				n, err := w.c.GetNetwork(ctx, w.net)
				require.NoError(t, err)
				assert.Equal(t, want, n.Routes)
			})
		})
	}
}

// TestMoveRoute moves a route VIP from a to b with the only verbs there
// are, delete then add, and checks the lock, the duplicate check and the
// hook in between.
func TestMoveRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newPrivateWorld(t, cloudapitest.WithActionDelay(time.Second))
		var seen [][]cloudapitest.Route
		w.sim.OnRoutes(func(networkID int64, routes []cloudapitest.Route) { seen = append(seen, routes) })
		ctx := context.Background()
		vip := mustPrefix("10.0.2.50/32")
		toA := cloudapi.Route{Destination: vip, Gateway: w.aIP}
		toB := cloudapi.Route{Destination: vip, Gateway: w.bIP}
		wait := func(a cloudapi.Action, err error) {
			t.Helper()
			require.NoError(t, err)
			_, err = w.c.WaitAction(ctx, a.ID)
			require.NoError(t, err)
		}
		wait(w.c.AddRoute(ctx, w.net, toA))
		_, err := w.c.AddRoute(ctx, w.net, toB)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeInvalidInput), "no second route for one destination: %v", err)
		_, err = w.c.DeleteRoute(ctx, w.net, toB)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeNotFound), "%v", err)

		del, err := w.c.DeleteRoute(ctx, w.net, toA)
		require.NoError(t, err)
		start := time.Now()
		wait(w.c.AddRoute(ctx, w.net, toB)) // locked while the delete runs, retried
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		_, err = w.c.WaitAction(ctx, del.ID)
		require.NoError(t, err)

		n, err := w.c.GetNetwork(ctx, w.net)
		require.NoError(t, err)
		assert.Equal(t, []cloudapi.Route{toB}, n.Routes)
		a, b := cloudapitest.Route{Destination: vip, Gateway: w.aIP}, cloudapitest.Route{Destination: vip, Gateway: w.bIP}
		assert.Equal(t, [][]cloudapitest.Route{{a}, {}, {b}}, seen)
	})
}

// TestPrivateVIPCallsAreUrgent checks that the calls of a private VIP move
// spend the budget's reserve at once, as Assign does, while polling waits.
func TestPrivateVIPCallsAreUrgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := cloudapi.NewBudget(cloudapi.WithReserve(100))
		s, c := newClient(t, nil, cloudapi.WithBudget(budget), cloudapi.WithRetryDeadline(2*time.Minute))
		net := s.AddNetwork(cloudapitest.Network{IPRange: mustPrefix("10.0.0.0/16"), Subnets: []cloudapitest.Subnet{{IPRange: mustPrefix("10.0.1.0/24")}}})
		srv := s.AddServer(cloudapitest.Server{PrivateNets: []cloudapitest.PrivateNet{{NetworkID: net, IP: mustAddr("10.0.1.2")}}})
		s.SetRateLimitRemaining(51)
		ctx := context.Background()
		_, err := c.GetNetwork(ctx, net) // learns: 50 left, below the reserve
		require.NoError(t, err)

		start := time.Now()
		_, err = c.ChangeAliasIPs(ctx, srv, net, []netip.Addr{mustAddr("10.0.1.100")})
		require.NoError(t, err)
		route := cloudapi.Route{Destination: mustPrefix("10.0.2.50/32"), Gateway: mustAddr("10.0.1.2")}
		_, err = c.AddRoute(ctx, net, route)
		require.NoError(t, err)
		_, err = c.DeleteRoute(ctx, net, route)
		require.NoError(t, err)
		_, err = c.GetNetwork(cloudapi.WithUrgent(ctx), net)
		require.NoError(t, err)
		assert.Zero(t, time.Since(start), "a move's calls do not wait for the budget")

		start = time.Now()
		_, err = c.ListNetworks(ctx, "")
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 50*time.Second, "polling waits for the reserve to refill")
	})
}
