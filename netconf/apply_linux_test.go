package netconf

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
)

// host builds a fake with a public NIC and the two private NICs of the
// reference example, as a fresh server has them before configuration.
func host() *fakeNL {
	f := newFakeNL()
	f.addLink("eth0", "96:00:00:00:00:01", 1500, true)
	f.addAddr("eth0", "203.0.113.10/32")
	f.addRoute("172.31.1.1/32", "", "eth0", unix.RTPROT_DHCP, 100)
	f.addRoute("0.0.0.0/0", "172.31.1.1", "eth0", unix.RTPROT_DHCP, 100)
	f.addLink("ens10", "86:00:00:2a:7d:e0", 1500, false)
	f.addLink("ens11", "86:00:00:2a:7d:e1", 1500, false)
	return f
}

const hostBase = `addr 203.0.113.10/32 dev eth0
link eth0 96:00:00:00:00:01 mtu 1500 up
route 0.0.0.0/0 via 172.31.1.1 dev eth0 proto 16 metric 100
route 172.31.1.1/32 dev eth0 proto 16 metric 100
`

const configuredBoth = `addr 10.0.0.2/32 dev ens10
addr 10.0.0.3/32 dev ens10
addr 10.0.0.4/32 dev ens10
addr 192.168.0.2/32 dev ens11
addr 203.0.113.10/32 dev eth0
link ens10 86:00:00:2a:7d:e0 mtu 1450 up
link ens11 86:00:00:2a:7d:e1 mtu 1450 up
link eth0 96:00:00:00:00:01 mtu 1500 up
route 0.0.0.0/0 via 172.31.1.1 dev eth0 proto 16 metric 100
route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 71
route 10.0.0.1/32 dev ens10 proto 71
route 172.31.1.1/32 dev eth0 proto 16 metric 100
route 192.168.0.0/16 via 192.168.0.1 dev ens11 proto 71
route 192.168.0.1/32 dev ens11 proto 71
`

func both() []metadata.PrivateNetwork { return []metadata.PrivateNetwork{nwTest1(), nwTest2()} }

func changeStrings(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func TestApplyFirstThenIdempotent(t *testing.T) {
	f := host()
	var owned Owned
	desired := Desired(both(), Options{})

	plan, err := Plan(context.Background(), f, desired, owned)
	require.NoError(t, err)
	_, writes := f.counts()
	assert.Zero(t, writes, "plan writes nothing")

	res, err := Apply(context.Background(), f, desired, &owned)
	require.NoError(t, err)
	assert.Equal(t, changeStrings(plan), changeStrings(res.Changes), "apply does what plan said")
	assert.Equal(t, []string{
		"replace mtu 1450 dev ens10 (network nw-test1 1234: mtu was 1500)",
		"replace link up dev ens10 (network nw-test1 1234: link was down)",
		"add address 10.0.0.2/32 dev ens10 (network nw-test1 1234: ip)",
		"add address 10.0.0.3/32 dev ens10 (network nw-test1 1234: alias ip)",
		"add address 10.0.0.4/32 dev ens10 (network nw-test1 1234: alias ip)",
		"add route 10.0.0.1/32 scope link dev ens10 (network nw-test1 1234: gateway)",
		"add route 10.0.0.0/8 via 10.0.0.1 dev ens10 (network nw-test1 1234: network)",
		"replace mtu 1450 dev ens11 (network nw-test2 4321: mtu was 1500)",
		"replace link up dev ens11 (network nw-test2 4321: link was down)",
		"add address 192.168.0.2/32 dev ens11 (network nw-test2 4321: ip)",
		"add route 192.168.0.1/32 scope link dev ens11 (network nw-test2 4321: gateway)",
		"add route 192.168.0.0/16 via 192.168.0.1 dev ens11 (network nw-test2 4321: network)",
	}, changeStrings(res.Changes))
	assert.Equal(t, 12, res.Writes)
	assert.Equal(t, configuredBoth, f.String())
	assert.Len(t, owned.Addresses, 4)
	assert.False(t, res.MetadataBlackholed)

	f.resetCounts()
	res, err = Apply(context.Background(), f, desired, &owned)
	require.NoError(t, err)
	_, writes = f.counts()
	assert.Zero(t, writes, "second apply writes nothing")
	assert.Zero(t, res.Writes)
	assert.Empty(t, res.Changes)
	assert.Equal(t, configuredBoth, f.String())
}

func TestApplyTreatsDHCPConfigAsDone(t *testing.T) {
	f := host()
	// What hc-utils' dhclient leaves on the first private NIC.
	f.addAddr("ens10", "10.0.0.2/24")
	f.addRoute("10.0.0.1/32", "", "ens10", unix.RTPROT_DHCP, 1024)
	f.addRoute("10.0.0.0/8", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 1024)
	var owned Owned

	res, err := Apply(context.Background(), f, Desired([]metadata.PrivateNetwork{nwTest1()}, Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"replace mtu 1450 dev ens10 (network nw-test1 1234: mtu was 1500)",
		"replace link up dev ens10 (network nw-test1 1234: link was down)",
		"add address 10.0.0.3/32 dev ens10 (network nw-test1 1234: alias ip)",
		"add address 10.0.0.4/32 dev ens10 (network nw-test1 1234: alias ip)",
	}, changeStrings(res.Changes))
	assert.False(t, owned.Has(mustMAC("86:00:00:2a:7d:e0"), netip.MustParsePrefix("10.0.0.2/32")))
	assert.False(t, owned.Has(mustMAC("86:00:00:2a:7d:e0"), netip.MustParsePrefix("10.0.0.2/24")))

	// The network is detached: only what hc-agent added goes; DHCP's
	// address and routes stay.
	res, err = Apply(context.Background(), f, Desired(nil, Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"remove address 10.0.0.3/32 dev ens10 (address of hc-agent on a detached network)",
		"remove address 10.0.0.4/32 dev ens10 (address of hc-agent on a detached network)",
	}, changeStrings(res.Changes))
	assert.Equal(t, sortLines(hostBase+`addr 10.0.0.2/24 dev ens10
link ens10 86:00:00:2a:7d:e0 mtu 1450 up
link ens11 86:00:00:2a:7d:e1 mtu 1500 down
route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 16 metric 1024
route 10.0.0.1/32 dev ens10 proto 16 metric 1024
`), f.String())
	assert.Empty(t, owned.Addresses)
}

func TestApplyRemovesOnlyOurs(t *testing.T) {
	ctx := context.Background()
	f := host()
	var owned Owned
	_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	// Foreign configuration on the same NIC.
	f.addAddr("ens10", "10.9.9.9/32")
	f.addRoute("10.99.0.0/16", "10.0.0.1", "ens10", unix.RTPROT_STATIC, 0)

	t.Run("alias ip removed from metadata", func(t *testing.T) {
		n1 := nwTest1()
		n1.AliasIPs = n1.AliasIPs[:1]
		res, err := Apply(ctx, f, Desired([]metadata.PrivateNetwork{n1, nwTest2()}, Options{}), &owned)
		require.NoError(t, err)
		assert.Equal(t, []string{"remove address 10.0.0.4/32 dev ens10 (address of hc-agent no longer in metadata)"}, changeStrings(res.Changes))
	})
	t.Run("network detached", func(t *testing.T) {
		n1 := nwTest1()
		n1.AliasIPs = n1.AliasIPs[:1]
		res, err := Apply(ctx, f, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
		require.NoError(t, err)
		assert.Equal(t, []string{
			"remove route 192.168.0.0/16 via 192.168.0.1 dev ens11 (route of hc-agent no longer wanted)",
			"remove route 192.168.0.1/32 scope link dev ens11 (route of hc-agent no longer wanted)",
			"remove address 192.168.0.2/32 dev ens11 (address of hc-agent on a detached network)",
		}, changeStrings(res.Changes))
		assert.Contains(t, f.String(), "addr 10.9.9.9/32 dev ens10\n")
		assert.Contains(t, f.String(), "route 10.99.0.0/16 via 10.0.0.1 dev ens10 proto 4\n")
		assert.NotContains(t, f.String(), "192.168.0.")
	})
	t.Run("deleted route and address of ours are restored", func(t *testing.T) {
		n1 := nwTest1()
		n1.AliasIPs = n1.AliasIPs[:1]
		require.NoError(t, f.RouteDel(toNetlinkRoute(f.index("ens10"), Route{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gw: netip.MustParseAddr("10.0.0.1")})))
		require.NoError(t, f.AddrDel(mustLink(t, f, "ens10"), toNetlinkAddr(netip.MustParsePrefix("10.0.0.3/32"))))
		res, err := Apply(ctx, f, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
		require.NoError(t, err)
		assert.Equal(t, []string{
			"add address 10.0.0.3/32 dev ens10 (network nw-test1 1234: alias ip)",
			"add route 10.0.0.0/8 via 10.0.0.1 dev ens10 (network nw-test1 1234: network)",
		}, changeStrings(res.Changes))
	})
}

func TestApplyExcludedAndDisabledLeaveThingsAlone(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []Options{{Exclude: []string{"nw-test1", "4321"}}, {Disabled: true}} {
		t.Run(render(Desired(both(), opts)), func(t *testing.T) {
			f := host()
			var owned Owned
			_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
			require.NoError(t, err)
			ownedBefore := owned.Clone()
			f.resetCounts()

			res, err := Apply(ctx, f, Desired(both(), opts), &owned)
			require.NoError(t, err)
			_, writes := f.counts()
			assert.Zero(t, writes)
			assert.Empty(t, res.Changes)
			assert.Equal(t, configuredBoth, f.String())
			assert.Equal(t, ownedBefore, owned)
		})
	}
}

func TestApplyKeepsGoingAndOwnsOnlyWhatSucceeded(t *testing.T) {
	f := host()
	f.fail["AddrReplace"] = unix.EPERM
	f.failOnce = true
	var owned Owned
	res, err := Apply(context.Background(), f, Desired([]metadata.PrivateNetwork{nwTest1()}, Options{}), &owned)
	require.ErrorIs(t, err, unix.EPERM)
	assert.Contains(t, err.Error(), "add address 10.0.0.2/32 dev ens10")
	assert.Equal(t, 7, res.Writes, "every write was attempted")
	assert.Len(t, owned.Addresses, 2)
	assert.False(t, owned.Has(mustMAC("86:00:00:2a:7d:e0"), netip.MustParsePrefix("10.0.0.2/32")))

	res, err = Apply(context.Background(), f, Desired([]metadata.PrivateNetwork{nwTest1()}, Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{"add address 10.0.0.2/32 dev ens10 (network nw-test1 1234: ip)"}, changeStrings(res.Changes))
	assert.Len(t, owned.Addresses, 3)
}

func TestApplyRetriesInterruptedDumps(t *testing.T) {
	f := host()
	f.interrupt = 3
	var owned Owned
	_, err := Apply(context.Background(), f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, configuredBoth, f.String())

	f.interrupt = 100
	_, err = Apply(context.Background(), f, Desired(both(), Options{}), &owned)
	assert.ErrorContains(t, err, "list links")
}

func TestApplyDefaultRouteMetricChange(t *testing.T) {
	f := host()
	var owned Owned
	_, err := Apply(context.Background(), f, Desired([]metadata.PrivateNetwork{nwTest1()}, Options{DefaultRoute: true}), &owned)
	require.NoError(t, err)
	assert.Contains(t, f.String(), "route 0.0.0.0/0 via 10.0.0.1 dev ens10 proto 71 metric 1024\n")

	res, err := Apply(context.Background(), f, Desired([]metadata.PrivateNetwork{nwTest1()}, Options{DefaultRoute: true, DefaultRouteMetric: 3000}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"add route 0.0.0.0/0 via 10.0.0.1 metric 3000 dev ens10 (network nw-test1 1234: default route)",
		"remove route 0.0.0.0/0 via 10.0.0.1 metric 1024 dev ens10 (route of hc-agent no longer wanted)",
	}, changeStrings(res.Changes))
}

func TestApplyMetadataBlackhole(t *testing.T) {
	ctx := context.Background()
	f := host()
	var owned Owned
	_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	// The private DHCP server pushes a metadata route through the gateway.
	f.addRoute("169.254.169.254/32", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 1024)

	res, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.True(t, res.MetadataBlackholed)
	assert.Equal(t, MetadataRoute{Dev: "ens10", MAC: "86:00:00:2a:7d:e0", Gw: netip.MustParseAddr("10.0.0.1"), Proto: "dhcp"}, res.MetadataRoute)
	assert.Equal(t, "a route sends 169.254.169.254 via 10.0.0.1 dev ens10 (proto dhcp); set private_networks.pin_metadata_route: true", MetadataCheck{Blackholed: true, Route: res.MetadataRoute}.Hint(false))
	assert.Empty(t, res.Changes, "reporting only, nothing changed")

	res, err = Apply(ctx, f, Desired(both(), Options{PinMetadataRoute: true}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{"add route 169.254.169.254/32 via 172.31.1.1 dev eth0 (metadata route pinned to the public gateway)"}, changeStrings(res.Changes))
	assert.False(t, res.MetadataBlackholed)
	assert.Equal(t, "eth0", res.MetadataRoute.Dev)

	res, err = Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{"remove route 169.254.169.254/32 via 172.31.1.1 dev eth0 (route of hc-agent no longer wanted)"}, changeStrings(res.Changes))
	assert.True(t, res.MetadataBlackholed)
	assert.Contains(t, f.String(), "route 169.254.169.254/32 via 10.0.0.1 dev ens10 proto 16 metric 1024\n", "the DHCP route is never removed")
}

func TestApplyMissingLinkAndGoneLink(t *testing.T) {
	ctx := context.Background()
	f := host()
	var owned Owned
	_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)

	f.delLink("ens11")
	res, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
	assert.Equal(t, []string{"86:00:00:2a:7d:e1"}, res.MissingLinks)
	assert.False(t, owned.Has(mustMAC("86:00:00:2a:7d:e1"), netip.MustParsePrefix("192.168.0.2/32")), "a link that went away drops its state")
}

func TestApplyCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := host()
	var owned Owned
	_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	assert.True(t, errors.Is(err, context.Canceled))
	_, writes := f.counts()
	assert.Zero(t, writes)
}

// A copy of ours that restore-on-deletion added while another tool's route
// was gone goes once that tool has its route again: never a duplicate.
func TestApplyHandsBackToForeignRoute(t *testing.T) {
	ctx := context.Background()
	f := host()
	var owned Owned
	_, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	// networkd comes back with its own copy of the network route.
	f.addRoute("10.0.0.0/8", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 1024)
	res, err := Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{"remove route 10.0.0.0/8 via 10.0.0.1 dev ens10 (another tool has the same route)"}, changeStrings(res.Changes))
	assert.Contains(t, f.String(), "route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 16 metric 1024\n")
	assert.NotContains(t, f.String(), "route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 71\n")
	res, err = Apply(ctx, f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
}
