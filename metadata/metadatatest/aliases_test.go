package metadatatest_test

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
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

func privateNet(ip string, aliases ...string) []metadata.PrivateNetwork {
	pn := metadata.PrivateNetwork{
		IP: netip.MustParseAddr(ip), AliasIPs: []netip.Addr{}, InterfaceNum: 1,
		MACAddress: net.HardwareAddr{0x86, 0, 0, 0, 0, 1}, NetworkID: 7, NetworkName: "net-a",
		Network: netip.MustParsePrefix("10.0.0.0/16"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
	}
	for _, a := range aliases {
		pn.AliasIPs = append(pn.AliasIPs, netip.MustParseAddr(a))
	}
	return []metadata.PrivateNetwork{pn}
}

// served reads the private-networks document as a client would.
func served(t *testing.T, s *metadatatest.Server) []netip.Addr {
	t.Helper()
	a := get(t, s.Client(), metadatatest.InMemoryURL, metadata.KeyPrivateNetworks, http.MethodGet)
	require.Equal(t, http.StatusOK, a.code)
	pns, err := metadata.ParsePrivateNetworks([]byte(a.body))
	require.NoError(t, err)
	require.Len(t, pns, 1)
	return append([]netip.Addr{}, pns[0].AliasIPs...) // the parser returns nil for []
}

// TestFollowAliasIPs moves an alias VIP through the API simulator and
// checks that each server's metadata follows its own attachment, after
// the lag: the new holder lists the VIP a little later, the old holder
// drops it a little later, and other aliases stay.
func TestFollowAliasIPs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lag = 3 * time.Second
		sim := cloudapitest.New(cloudapitest.WithActionDelay(time.Second))
		defer sim.Close()
		netID := sim.AddNetwork(cloudapitest.Network{ID: 7, IPRange: netip.MustParsePrefix("10.0.0.0/16"),
			Subnets: []cloudapitest.Subnet{{IPRange: netip.MustParsePrefix("10.0.1.0/24")}}})
		a := sim.AddServer(cloudapitest.Server{PrivateNets: []cloudapitest.PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.2"),
			AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.100")}}}})
		b := sim.AddServer(cloudapitest.Server{PrivateNets: []cloudapitest.PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.3"),
			AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.1.20")}}}})
		mdA, mdB := metadatatest.NewUnstarted(), metadatatest.NewUnstarted()
		defer mdA.Close()
		defer mdB.Close()
		mdA.SetPrivateNetworks(privateNet("10.0.1.2", "10.0.1.10", "10.0.1.100"))
		mdB.SetPrivateNetworks(privateNet("10.0.1.3", "10.0.1.20"))
		for _, md := range []*metadatatest.Server{mdA, mdB} {
			md.SetAliasLag(lag)
		}
		sim.OnAliasIPs(mdA.FollowAliasIPs(a))
		sim.OnAliasIPs(mdB.FollowAliasIPs(b))
		c := cloudapi.New("token", cloudapi.WithEndpoint("http://sim/v1"), cloudapi.WithHTTPClient(&http.Client{Transport: sim.Transport()}))
		ctx := context.Background()
		move := func(server int64, ips ...string) {
			t.Helper()
			act, err := c.ChangeAliasIPs(ctx, server, netID, addrList(ips))
			require.NoError(t, err)
			_, err = c.WaitAction(ctx, act.ID)
			require.NoError(t, err)
		}

		move(a, "10.0.1.10")
		assert.Equal(t, addrList([]string{"10.0.1.10", "10.0.1.100"}), served(t, mdA), "old holder: not yet")
		time.Sleep(lag)
		synctest.Wait()
		assert.Equal(t, addrList([]string{"10.0.1.10"}), served(t, mdA), "old holder dropped the VIP after the lag")

		move(b, "10.0.1.20", "10.0.1.100")
		assert.Equal(t, addrList([]string{"10.0.1.20"}), served(t, mdB), "new holder: not yet")
		time.Sleep(lag)
		synctest.Wait()
		assert.Equal(t, addrList([]string{"10.0.1.20", "10.0.1.100"}), served(t, mdB), "new holder lists the VIP after the lag")
		assert.Equal(t, addrList([]string{"10.0.1.10"}), served(t, mdA), "the other server's change did not touch A")
		assert.Equal(t, addrList([]string{"10.0.1.20", "10.0.1.100"}), mdB.PrivateNetworks()[0].AliasIPs)
	})
}

func TestSetAliasIPsWithoutLag(t *testing.T) {
	tests := []struct {
		name    string
		network int64
		ips     []string
		want    []string
	}{
		{"replace", 7, []string{"10.0.1.11", "10.0.1.12"}, []string{"10.0.1.11", "10.0.1.12"}},
		{"clear", 7, nil, []string{}},
		{"other network ignored", 8, []string{"10.0.1.11"}, []string{"10.0.1.10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := metadatatest.NewUnstarted()
			defer md.Close()
			md.SetPrivateNetworks(privateNet("10.0.1.2", "10.0.1.10"))
			md.SetAliasIPs(tc.network, addrList(tc.ips))
			assert.Equal(t, addrList(tc.want), served(t, md))
		})
	}
}

func addrList(ss []string) []netip.Addr {
	out := []netip.Addr{}
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}
