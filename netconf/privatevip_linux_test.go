package netconf

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetnsPrivateVIPs(t *testing.T) {
	ctx := context.Background()
	host, peers := newNS(t), newNS(t)
	dev := host.addVeth(t, peers, "86:00:00:7c:00:01")
	names := map[string]string{dev: "ens10"}
	mac := mustMAC("86:00:00:7c:00:01")
	vip := netip.MustParseAddr("10.0.1.100")
	p := NewPrivateVIPs(host.h)

	require.NoError(t, p.RemoveVIP(ctx, mac, vip), "nothing to remove is done")
	require.NoError(t, p.AddVIP(ctx, mac, vip))
	require.NoError(t, p.AddVIP(ctx, mac, vip), "idempotent")
	assert.Equal(t, "addr 10.0.1.100/32 dev ens10\nlink ens10 86:00:00:7c:00:01 mtu 1500 down\n", host.state(t, names))
	has, err := p.HasVIP(mac, vip)
	require.NoError(t, err)
	assert.True(t, has)

	require.NoError(t, p.RemoveVIP(ctx, mac, vip))
	require.NoError(t, p.RemoveVIP(ctx, mac, vip), "idempotent")
	assert.Equal(t, "link ens10 86:00:00:7c:00:01 mtu 1500 down\n", host.state(t, names))

	other := mustMAC("86:00:00:7c:00:99")
	assert.ErrorContains(t, p.AddVIP(ctx, other, vip), "add private vip 10.0.1.100: no private nic with mac 86:00:00:7c:00:99")
	assert.NoError(t, p.RemoveVIP(ctx, other, vip), "no NIC, nothing to remove")
}
