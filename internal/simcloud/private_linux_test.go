package simcloud

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// privateVIPCloud is newTestCloud with alpha and beta answering their names
// on port 80, a private client, and the API simulator connected, with an
// API client that reaches it in memory.
func privateVIPCloud(t *testing.T) (*Cloud, *Server, *cloudapitest.Sim, *cloudapi.Client) {
	t.Helper()
	c := newTestCloud(t, true, "alpha", "beta")
	sim := cloudapitest.New()
	t.Cleanup(sim.Close)
	require.NoError(t, c.ConnectAPI(sim))
	ctx := ctxTimeout(t, 10*time.Second)
	for _, name := range []string{"alpha", "beta"} {
		_, err := c.Server(name).StartNameService(ctx, 80)
		require.NoError(t, err)
	}
	pc, err := c.AddPrivateClient("net-a")
	require.NoError(t, err)
	api := cloudapi.New("token", cloudapi.WithEndpoint("http://sim/v1"), cloudapi.WithHTTPClient(&http.Client{Transport: sim.Transport()}))
	return c, pc, sim, api
}

// answerer fetches url from the private client: the name of the server
// that answered, or "" when nothing did.
func answerer(t *testing.T, pc *Server, url string) string {
	t.Helper()
	got, err := pc.Get(ctxTimeout(t, 2*time.Second), url)
	if err != nil {
		return ""
	}
	return got
}

func waitAction(t *testing.T, api *cloudapi.Client, a cloudapi.Action, err error) {
	t.Helper()
	require.NoError(t, err)
	_, err = api.WaitAction(ctxTimeout(t, 10*time.Second), a.ID)
	require.NoError(t, err)
}

// TestAliasVIPFollowsAPI moves an alias VIP with change_alias_ips,
// read-modify-write, and checks that the private client reaches the server
// the API says, that every other alias stays, and that the metadata
// follows.
func TestAliasVIPFollowsAPI(t *testing.T) {
	c, pc, sim, api := privateVIPCloud(t)
	alpha, beta := c.Server("alpha"), c.Server("beta")
	netID := c.Network("net-a").ID()
	vip := netip.MustParseAddr("10.0.0.100")
	otherA, otherB := netip.MustParseAddr("10.0.0.50"), netip.MustParseAddr("10.0.0.60")
	require.NoError(t, c.SetAliasIPs("alpha", "net-a", []netip.Addr{otherA, vip}))
	require.NoError(t, c.SetAliasIPs("beta", "net-a", []netip.Addr{otherB}))
	assert.Equal(t, []netip.Addr{otherA, vip}, sim.AliasIPs(alpha.ID(), netID), "set-up is mirrored to the API")
	url := "http://" + vip.String() + "/"
	assert.Equal(t, "alpha", answerer(t, pc, url))

	ctx := ctxTimeout(t, 10*time.Second)
	_, err := api.ChangeAliasIPs(ctx, beta.ID(), netID, []netip.Addr{otherB, vip})
	require.True(t, cloudapi.IsError(err, cloudapi.CodeIPNotAvailable), "%v", err)
	a, err := api.ChangeAliasIPs(ctx, alpha.ID(), netID, []netip.Addr{otherA})
	waitAction(t, api, a, err)
	assert.Equal(t, "", c.AliasHolder("net-a", vip))
	assert.Equal(t, "", answerer(t, pc, url), "between the two actions nobody has the VIP")
	a, err = api.ChangeAliasIPs(ctx, beta.ID(), netID, []netip.Addr{otherB, vip})
	waitAction(t, api, a, err)

	assert.Equal(t, "beta", c.AliasHolder("net-a", vip))
	assert.Equal(t, "beta", answerer(t, pc, url))
	assert.Equal(t, "alpha", answerer(t, pc, "http://"+otherA.String()+"/"), "alpha's other alias still routed")
	assert.Equal(t, "beta", answerer(t, pc, "http://"+otherB.String()+"/"))
	_, pns := beta.Metadata()
	require.Len(t, pns, 1)
	assert.Equal(t, []netip.Addr{otherB, vip}, pns[0].AliasIPs, "metadata follows the API")
	_, pns = alpha.Metadata()
	assert.Equal(t, []netip.Addr{otherA}, pns[0].AliasIPs)
}

// TestRouteVIPFollowsAPI moves a route VIP (inside the network, outside the
// subnet) with delete_route then add_route. Both servers have the VIP on
// lo, so only the router decides who answers.
func TestRouteVIPFollowsAPI(t *testing.T) {
	c, pc, sim, api := privateVIPCloud(t)
	alpha, beta := c.Server("alpha"), c.Server("beta")
	n := c.Network("net-a")
	vip := netip.MustParsePrefix("10.0.5.50/32")
	for _, s := range []*Server{alpha, beta} {
		require.NoError(t, addAddr(s.NetlinkHandle(), "lo", vip))
	}
	ip := func(s *Server) netip.Addr {
		_, pns := s.Metadata()
		return pns[0].IP
	}
	url := "http://" + vip.Addr().String() + "/"
	assert.Equal(t, "", answerer(t, pc, url), "no route, no answer")

	ctx := ctxTimeout(t, 10*time.Second)
	toAlpha := cloudapi.Route{Destination: vip, Gateway: ip(alpha)}
	toBeta := cloudapi.Route{Destination: vip, Gateway: ip(beta)}
	a, err := api.AddRoute(ctx, n.ID(), toAlpha)
	waitAction(t, api, a, err)
	assert.Equal(t, "alpha", c.RouteHolder("net-a", vip))
	assert.Equal(t, "alpha", answerer(t, pc, url))

	a, err = api.DeleteRoute(ctx, n.ID(), toAlpha)
	waitAction(t, api, a, err)
	assert.Equal(t, "", answerer(t, pc, url), "the window between delete and add")
	a, err = api.AddRoute(ctx, n.ID(), toBeta)
	waitAction(t, api, a, err)
	assert.Equal(t, "beta", answerer(t, pc, url))
	got, ok := sim.Network(n.ID())
	require.True(t, ok)
	assert.Equal(t, []cloudapitest.Route{{Destination: vip, Gateway: ip(beta)}}, got.Routes)

	// A crash takes the route with the veth; Restore brings it back.
	require.NoError(t, c.Crash("beta"))
	assert.Empty(t, apiRoutes(t, n))
	require.NoError(t, c.Restore("beta"))
	assert.Equal(t, []netip.Prefix{vip}, apiRoutes(t, n))
}

// apiRoutes lists the destinations of the router's API routes.
func apiRoutes(t *testing.T, n *Network) []netip.Prefix {
	t.Helper()
	rs, err := n.router.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: netRouteProto}, netlink.RT_FILTER_PROTOCOL)
	require.NoError(t, err)
	var out []netip.Prefix
	for _, r := range rs {
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), ones))
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// TestSourceRecorder checks that a server's outgoing connection to the
// client namespace is seen with the server's public address as source (and
// a floating IP when the server sends from it).
func TestSourceRecorder(t *testing.T) {
	c := newTestCloud(t, false, "alpha")
	alpha := c.Server("alpha")
	rec, err := c.StartSourceRecorder(8080)
	require.NoError(t, err)
	ctx := ctxTimeout(t, 10*time.Second)
	got, err := alpha.Get(ctx, rec.URL())
	require.NoError(t, err)
	assert.Equal(t, alpha.PublicIPv4().String(), got)
	srcs, err := rec.WaitSources(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{alpha.PublicIPv4()}, srcs)

	f, err := c.AddFloatingIP(FloatingIPSpec{Name: "v4"})
	require.NoError(t, err)
	require.NoError(t, c.RouteFloatingIP(f.Prefix(), "alpha"))
	require.NoError(t, alpha.ConfigureFloatingIP(f))
	got, err = get(ctx, httpClientFrom(alpha, f.Addr()), rec.URL())
	require.NoError(t, err)
	assert.Equal(t, f.Addr().String(), got, "a connection from the floating IP is seen from it")
	srcs, err = rec.WaitSources(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{alpha.PublicIPv4(), f.Addr()}, srcs)
}

// httpClientFrom returns an HTTP client whose connections start inside
// the server's namespace from the source address src.
func httpClientFrom(s *Server, src netip.Addr) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := s.Do(func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(src.AsSlice())}}
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}
