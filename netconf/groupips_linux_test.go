package netconf

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/metadata"
)

// TestNetnsGroupIPsLeftToTheGroup plays an alias VIP moving to and away from
// this server while the metadata lags behind, as it does on the platform:
// netconf must neither remove the VIP that the group has just added nor
// keep owning an address that the group manages.
func TestNetnsGroupIPsLeftToTheGroup(t *testing.T) {
	ctx := context.Background()
	host, peers := newNS(t), newNS(t)
	dev := host.addVeth(t, peers, "86:00:00:7b:00:01")
	names := map[string]string{dev: "ens10"}
	vip := netip.MustParseAddr("10.0.0.4")
	vipPrefix := netip.PrefixFrom(vip, 32)
	mac := mustMAC("86:00:00:7b:00:01")
	nw := withMAC(nwTest1(), "86:00:00:7b:00:01") // aliases 10.0.0.3 and the VIP 10.0.0.4
	withoutVIP := nw
	withoutVIP.AliasIPs = []netip.Addr{netip.MustParseAddr("10.0.0.3")}
	groupOpts := Options{GroupIPs: []netip.Addr{vip}}

	// Before the group was configured, netconf added the VIP from the
	// metadata and owns it.
	var owned Owned
	_, err := Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{nw}, Options{}), &owned)
	require.NoError(t, err)
	require.True(t, owned.Has(mac, vipPrefix))

	// With the group configured, netconf drops it from its record without
	// touching the address.
	res, err := Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{nw}, groupOpts), &owned)
	require.NoError(t, err)
	assert.Zero(t, res.Writes)
	assert.False(t, owned.Has(mac, vipPrefix), "the group owns the VIP")
	assert.Contains(t, host.state(t, names), "addr 10.0.0.4/32 dev ens10")

	// The VIP moved away and came back: the group re-added it, the
	// metadata does not list it yet. netconf leaves it.
	res, err = Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{withoutVIP}, groupOpts), &owned)
	require.NoError(t, err)
	assert.Zero(t, res.Writes)
	assert.Contains(t, host.state(t, names), "addr 10.0.0.4/32 dev ens10")

	// The group released it: the metadata still lists it, netconf does not
	// add it back.
	link, err := host.h.LinkByName(dev)
	require.NoError(t, err)
	require.NoError(t, host.h.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	res, err = Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{nw}, groupOpts), &owned)
	require.NoError(t, err)
	assert.Zero(t, res.Writes)
	assert.NotContains(t, host.state(t, names), "addr 10.0.0.4/32")
	assert.Contains(t, host.state(t, names), "addr 10.0.0.3/32 dev ens10", "other aliases stay netconf's")
	assert.True(t, owned.Has(mac, netip.MustParsePrefix("10.0.0.3/32")))
}
