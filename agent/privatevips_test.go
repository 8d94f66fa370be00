package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
)

type nopHost struct{}

func (nopHost) Set(context.Context, string, []netip.Prefix) error { return nil }

type nopPrivateHost struct{}

func (nopPrivateHost) AddVIP(context.Context, net.HardwareAddr, netip.Addr) error    { return nil }
func (nopPrivateHost) RemoveVIP(context.Context, net.HardwareAddr, netip.Addr) error { return nil }

type nopEgress struct{}

func (nopEgress) Set(context.Context, string, []netip.Addr) error { return nil }

func TestGroupHandler(t *testing.T) {
	nets := []metadata.PrivateNetwork{{
		IP: netip.MustParseAddr("10.0.1.2"), MACAddress: net.HardwareAddr{0x86, 0, 0, 0, 0, 1}, NetworkID: 7, NetworkName: "db",
		Network: netip.MustParsePrefix("10.0.0.0/16"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
	}}
	api := cloudapi.New("token")
	p := groupsParams{api: api, host: nopHost{}, privateHost: nopPrivateHost{}, egress: nopEgress{}}
	gc := floatingip.GroupConfig{Self: 42, ActionTimeout: time.Minute}
	deps := floatingip.GroupDeps{Cloud: api, Host: nopHost{}}
	alias := config.PrivateIP{IP: "10.0.1.100", Via: config.ViaAlias}
	route := config.PrivateIP{IP: "10.0.2.50", Via: config.ViaRoute}

	tests := []struct {
		name     string
		g        config.Group
		netsErr  error
		wantKind floatingip.AddressKind // "" means nil: NewGroup's default
		wantErr  string
	}{
		{name: "floating IPs only", g: config.Group{Name: "web", FloatingIPs: []string{"ip"}}},
		{name: "egress wraps the floating IPs", g: config.Group{Name: "web", FloatingIPs: []string{"ip"}, Egress: true}, wantKind: floatingip.KindFloatingIP},
		{name: "alias only", g: config.Group{Name: "db", PrivateIPs: []config.PrivateIP{alias}}, wantKind: floatingip.KindAliasIP},
		{name: "route only", g: config.Group{Name: "db", PrivateIPs: []config.PrivateIP{route}}, wantKind: floatingip.KindRouteIP},
		{name: "all kinds", g: config.Group{Name: "db", FloatingIPs: []string{"ip"}, PrivateIPs: []config.PrivateIP{alias, route}}, wantKind: floatingip.KindMixed},
		{
			name:    "a VIP outside the networks names its key",
			g:       config.Group{Name: "db", PrivateIPs: []config.PrivateIP{alias, {IP: "10.0.1.101", Via: config.ViaRoute}}},
			wantErr: "group db: private_ips[1].ip: 10.0.1.101 is inside subnet 10.0.1.0/24 of network db (7, 10.0.0.0/16)",
		},
		{
			name: "metadata unreadable", g: config.Group{Name: "db", PrivateIPs: []config.PrivateIP{alias}}, netsErr: errors.New("timeout"),
			wantErr: "group db: read private networks for private_ips: timeout",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := groupHandler(p, gc, deps, tc.g, nets, tc.netsErr)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.wantKind == "" {
				assert.Nil(t, h)
				return
			}
			require.NotNil(t, h)
			assert.Equal(t, tc.wantKind, h.Kind())
		})
	}

	_, err := groupHandler(groupsParams{api: api, host: nopHost{}}, gc, deps, config.Group{Name: "db", PrivateIPs: []config.PrivateIP{alias}}, nets, nil)
	require.ErrorContains(t, err, "group db: private_ips are not available in this build")
}
