package floatingip

import (
	"context"
	"net"
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

// privateCluster runs one group member per server over the simulated API,
// holding the private VIPs of one kind: the group's decision, gossip and
// health code is the same as for floating IPs; only the Handler differs.
type privateCluster struct {
	t       *testing.T
	sim     *cloudapitest.Sim
	api     *cloudapi.Client
	hub     *hub
	net     int64
	ids     []int64
	ips     map[int64]netip.Addr
	hosts   map[int64]*fakePrivateHost
	probes  map[int64]*switchProbe
	groups  map[int64]*Group
	cancels map[int64]context.CancelFunc
	dones   map[int64]chan error
	kind    AddressKind
}

func newPrivateCluster(t *testing.T, kind AddressKind, prios ...int) *privateCluster {
	sim := cloudapitest.New(cloudapitest.WithTokens("token"), cloudapitest.WithActionDelay(500*time.Millisecond))
	t.Cleanup(sim.Close)
	c := &privateCluster{
		t: t, sim: sim, hub: newHub(detect), kind: kind,
		api: cloudapi.New("token", cloudapi.WithEndpoint("http://sim/v1"), cloudapi.WithHTTPClient(&http.Client{Transport: sim.Transport()})),
		ips: map[int64]netip.Addr{}, hosts: map[int64]*fakePrivateHost{}, probes: map[int64]*switchProbe{}, groups: map[int64]*Group{},
		cancels: map[int64]context.CancelFunc{}, dones: map[int64]chan error{},
	}
	c.net = sim.AddNetwork(cloudapitest.Network{Name: "db-net", IPRange: privNet, Subnets: []cloudapitest.Subnet{{IPRange: privSubnet}}})
	for i := range prios {
		ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(2 + i)})
		other := netip.AddrFrom4([4]byte{10, 0, 1, byte(200 + i)}) // an alias of its own on every server
		id := sim.AddServer(cloudapitest.Server{Name: "db" + string(rune('1'+i)), PrivateNets: []cloudapitest.PrivateNet{{
			NetworkID: c.net, IP: ip, AliasIPs: []netip.Addr{other}, MACAddress: "86:00:00:00:00:0" + string(rune('1'+i))}}})
		c.ids = append(c.ids, id)
		c.ips[id] = ip
		c.hosts[id] = newFakePrivateHost()
		c.probes[id] = &switchProbe{}
	}
	for i, id := range c.ids {
		c.start(id, prios[i])
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *privateCluster) vip() netip.Addr {
	if c.kind == KindRouteIP {
		return routeVIP
	}
	return aliasVIP
}

func (c *privateCluster) start(id int64, prio int) {
	mac, _ := net.ParseMAC("86:00:00:00:00:0" + string(rune('1'+int(id-c.ids[0]))))
	cfg := PrivateVIPsConfig{Self: id, ActionTimeout: time.Minute, Host: c.hosts[id],
		VIPs: []PrivateVIP{{IP: c.vip(), NetworkID: c.net, MAC: mac, SelfIP: c.ips[id]}}}
	var h Handler
	var err error
	if c.kind == KindRouteIP {
		h, err = NewRouteIPs(cfg, c.api)
	} else {
		h, err = NewAliasIPs(cfg, c.api)
	}
	require.NoError(c.t, err)
	g, err := NewGroup(withConfigDefaults(GroupConfig{
		Name: "db", Self: id, Priority: prio, ExpectedSize: len(c.ids),
		Health: HealthConfig{Interval: time.Second, Rise: 2, Fall: 2},
	}), GroupDeps{Handler: h, Membership: c.hub.join(id), Probe: c.probes[id].probe})
	require.NoError(c.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c.groups[id], c.cancels[id], c.dones[id] = g, cancel, done
	go func() { done <- g.Run(ctx) }() // exits when stop cancels ctx
}

func (c *privateCluster) stop(id int64) {
	if c.cancels[id] == nil {
		return
	}
	c.cancels[id]()
	require.NoError(c.t, <-c.dones[id])
	c.cancels[id] = nil
}

func (c *privateCluster) stopAll() {
	for _, id := range c.ids {
		c.stop(id)
	}
}

// holder returns who holds the VIP by the API.
func (c *privateCluster) holder() []int64 {
	var out []int64
	if c.kind == KindRouteIP {
		n, _ := c.sim.Network(c.net)
		for _, r := range n.Routes {
			if r.Destination == netip.PrefixFrom(routeVIP, 32) {
				for id, ip := range c.ips {
					if ip == r.Gateway {
						out = append(out, id)
					}
				}
			}
		}
		return out
	}
	for _, id := range c.ids {
		for _, a := range c.sim.AliasIPs(id, c.net) {
			if a == aliasVIP {
				out = append(out, id)
			}
		}
	}
	return out
}

// configuredOn lists the live servers that have the VIP configured.
func (c *privateCluster) configuredOn() []int64 {
	var out []int64
	for _, id := range c.ids {
		if c.cancels[id] != nil && c.hosts[id].String() != "" {
			out = append(out, id)
		}
	}
	return out
}

// otherAliasesKept checks that every server still has its own alias.
func (c *privateCluster) otherAliasesKept() {
	for i, id := range c.ids {
		assert.Contains(c.t, c.sim.AliasIPs(id, c.net), netip.AddrFrom4([4]byte{10, 0, 1, byte(200 + i)}), "server %d lost its own alias", id)
	}
}

func TestGroupPrivateVIPFailover(t *testing.T) {
	for _, kind := range []AddressKind{KindAliasIP, KindRouteIP} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newPrivateCluster(t, kind, 200, 150, 120)
				a, b := c.ids[0], c.ids[1]
				time.Sleep(10 * time.Second)
				assert.Equal(t, []int64{a}, c.holder(), "the highest priority takes the unassigned VIP")
				assert.Equal(t, []int64{a}, c.configuredOn())
				c.otherAliasesKept()

				start := time.Now()
				c.hub.crash(a)
				c.stop(a)
				time.Sleep(10 * time.Second)
				assert.Equal(t, []int64{b}, c.holder(), "the next priority takes over")
				assert.Equal(t, []int64{b}, c.configuredOn())
				c.otherAliasesKept()
				st := c.groups[b].Status()
				require.NotNil(t, st.LastMove)
				assert.Equal(t, MoveSuccess, st.LastMove.Result)
				assert.Equal(t, kind, st.Kind)
				took := st.LastMove.At.Add(st.LastMove.Duration).Sub(start)
				t.Logf("%s: crash to verified move %v (detection %v, actions of 500ms)", kind, took, detect)
				// Two actions (remove there + add here; delete + add), each
				// 500 ms, plus detection.
				assert.LessOrEqual(t, took, detect+2*time.Second)
			})
		})
	}
}

func TestGroupPrivateVIPHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPrivateCluster(t, KindAliasIP, 200, 150)
		a, b := c.ids[0], c.ids[1]
		time.Sleep(10 * time.Second)
		require.Equal(t, []int64{a}, c.holder())
		// SIGTERM: the holder hands over before it exits.
		done := make(chan error, 1)
		go func() { done <- c.groups[a].Handover(context.Background()) }()
		require.NoError(t, <-done)
		time.Sleep(5 * time.Second)
		assert.Equal(t, []int64{b}, c.holder())
		assert.Equal(t, []int64{b}, c.configuredOn())
		c.otherAliasesKept()
	})
}

func TestGroupPrivateVIPStandbysRace(t *testing.T) {
	for _, kind := range []AddressKind{KindAliasIP, KindRouteIP} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// As TestGroupStandbysRace: b was unhealthy and recovers
				// just as the holder dies; d still sees the old gossip (b
				// unhealthy), so b and d both decide to take.
				c := newPrivateCluster(t, kind, 300, 200, 200)
				a, b, d := c.ids[0], c.ids[1], c.ids[2]
				c.probes[b].fail.Store(true)
				time.Sleep(10 * time.Second)
				require.Equal(t, []int64{a}, c.holder())
				c.hub.freeze(b, d, true)
				c.probes[b].fail.Store(false)
				time.Sleep(3 * time.Second)
				c.hub.crash(a)
				c.stop(a)
				time.Sleep(2 * time.Second)
				c.hub.freeze(b, d, false)
				time.Sleep(30 * time.Second)
				moves := 0
				for _, id := range []int64{b, d} {
					if st := c.groups[id].Status(); st.LastMove != nil {
						moves++
					}
				}
				assert.Equal(t, 2, moves, "both tried")
				h := c.holder()
				require.Len(t, h, 1, "one holder by the API")
				assert.Contains(t, []int64{b, d}, h[0])
				assert.Equal(t, h, c.configuredOn(), "exactly one of the living has the address")
				c.otherAliasesKept()
			})
		})
	}
}
