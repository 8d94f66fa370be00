package cloudapitest

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refNetwork is the shape of a network in hcloud-go v2.52.0's schema
// package (the API reference in this repository has no Networks section).
const refNetwork = `{"created":"2016-01-30T23:50:00+00:00","expose_routes_to_vswitch":false,"id":4711,"ip_range":"10.0.0.0/16","labels":{},"load_balancers":[42],"name":"mynet","protection":{"delete":false},"routes":[{"destination":"10.100.1.0/24","gateway":"10.0.1.1"}],"servers":[42],"subnets":[{"gateway":"10.0.0.1","ip_range":"10.0.1.0/24","network_zone":"eu-central","type":"cloud"}]}`

// refServerPrivateNet is the shape of one private_net entry of a server.
const refServerPrivateNet = `{"alias_ips":["10.0.1.10"],"ip":"10.0.1.2","mac_address":"86:00:00:2a:7d:e0","network":4711}`

func TestNetworkConformance(t *testing.T) {
	s, c := newTestSim(t)
	netID := s.AddNetwork(Network{Name: "mynet", IPRange: netip.MustParsePrefix("10.0.0.0/16"),
		Subnets: []Subnet{{IPRange: netip.MustParsePrefix("10.0.1.0/24")}},
		Routes:  []Route{{Destination: netip.MustParsePrefix("10.100.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.2")}}})
	srvID := s.AddServer(Server{Name: "db1", PrivateNets: []PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.2"),
		AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.1.10")}, MACAddress: "86:00:00:2a:7d:e0"}}})
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		check  func(t *testing.T, m map[string]any)
	}{
		{"list networks", "GET", "/networks", nil, 200, func(t *testing.T, m map[string]any) {
			require.Len(t, m["networks"], 1)
			sameShape(t, "networks[0]", mustJSON(refNetwork), m["networks"].([]any)[0])
			sameShape(t, "meta", mustJSON(refMeta), m["meta"])
		}},
		{"get network", "GET", fmt.Sprintf("/networks/%d", netID), nil, 200, func(t *testing.T, m map[string]any) {
			n := m["network"].(map[string]any)
			sameShape(t, "network", mustJSON(refNetwork), n)
			assert.Equal(t, []any{float64(srvID)}, n["servers"])
			assert.Equal(t, "10.0.0.1", n["subnets"].([]any)[0].(map[string]any)["gateway"])
		}},
		{"server private_net", "GET", fmt.Sprintf("/servers/%d", srvID), nil, 200, func(t *testing.T, m map[string]any) {
			pn := m["server"].(map[string]any)["private_net"].([]any)
			require.Len(t, pn, 1)
			sameShape(t, "private_net[0]", mustJSON(refServerPrivateNet), pn[0])
		}},
		{"change alias ips", "POST", fmt.Sprintf("/servers/%d/actions/change_alias_ips", srvID), map[string]any{"network": netID, "alias_ips": []string{"10.0.1.11"}}, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
			assert.Equal(t, "change_alias_ips", m["action"].(map[string]any)["command"])
		}},
		{"change alias ips without list", "POST", fmt.Sprintf("/servers/%d/actions/change_alias_ips", srvID), map[string]any{"network": netID}, 400, func(t *testing.T, m map[string]any) {
			sameShape(t, "body", mustJSON(refError), m)
		}},
		{"add route", "POST", fmt.Sprintf("/networks/%d/actions/add_route", netID), map[string]any{"destination": "10.0.2.50/32", "gateway": "10.0.1.2"}, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
			assert.Equal(t, "add_route", m["action"].(map[string]any)["command"])
		}},
		{"add invalid route", "POST", fmt.Sprintf("/networks/%d/actions/add_route", netID), map[string]any{"destination": "10.0.2.51/32", "gateway": "172.31.1.1"}, 400, func(t *testing.T, m map[string]any) {
			sameShape(t, "body", mustJSON(refError), m)
			assert.Equal(t, "gateway", m["error"].(map[string]any)["details"].(map[string]any)["fields"].([]any)[0].(map[string]any)["name"])
		}},
		{"delete route", "POST", fmt.Sprintf("/networks/%d/actions/delete_route", netID), map[string]any{"destination": "10.0.2.50/32", "gateway": "10.0.1.2"}, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
		}},
		{"network not found", "GET", "/networks/999999", nil, 404, func(t *testing.T, m map[string]any) {
			assert.Equal(t, "not_found", m["error"].(map[string]any)["code"])
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			resp, m := c.do(token, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, "body %v", m)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			tc.check(t, m)
		})
	}
}

// TestAliasIPConflicts covers the refusals that make change_alias_ips a
// two-step move: an alias another server holds, or is about to get from a
// running action, is not available, unless AllowSharedAliasIPs.
func TestAliasIPConflicts(t *testing.T) {
	vip := "10.0.1.100"
	tests := []struct {
		name   string
		shared bool
		// pending starts a change on server c that adds the VIP and is
		// still running when b asks.
		pending bool
		holder  bool // a holds the VIP
		status  int
	}{
		{name: "free", status: 201},
		{name: "held", holder: true, status: 409},
		{name: "held, shared allowed", holder: true, shared: true, status: 201},
		{name: "pending on another server", pending: true, status: 409},
		{name: "pending, shared allowed", pending: true, shared: true, status: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newTestSim(t, WithActionDelay(time.Hour))
			s.AllowSharedAliasIPs(tc.shared)
			netID := s.AddNetwork(Network{IPRange: netip.MustParsePrefix("10.0.0.0/16"), Subnets: []Subnet{{IPRange: netip.MustParsePrefix("10.0.1.0/24")}}})
			var aAliases []netip.Addr
			if tc.holder {
				aAliases = []netip.Addr{netip.MustParseAddr(vip)}
			}
			s.AddServer(Server{PrivateNets: []PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.2"), AliasIPs: aAliases}}})
			b := s.AddServer(Server{PrivateNets: []PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.3")}}})
			cc := s.AddServer(Server{PrivateNets: []PrivateNet{{NetworkID: netID, IP: netip.MustParseAddr("10.0.1.4")}}})
			body := map[string]any{"network": netID, "alias_ips": []string{vip}}
			if tc.pending {
				resp, m := c.do(token, "POST", fmt.Sprintf("/servers/%d/actions/change_alias_ips", cc), body)
				require.Equal(t, 201, resp.StatusCode, "%v", m)
			}
			resp, m := c.do(token, "POST", fmt.Sprintf("/servers/%d/actions/change_alias_ips", b), body)
			require.Equal(t, tc.status, resp.StatusCode, "%v", m)
			if tc.status == 409 {
				assert.Equal(t, "ip_not_available", m["error"].(map[string]any)["code"])
			}
			resp, m = c.do(token, "POST", fmt.Sprintf("/servers/%d/actions/change_alias_ips", b), map[string]any{"network": netID, "alias_ips": []string{}})
			if tc.status == 201 {
				assert.Equal(t, 423, resp.StatusCode, "the server is locked while its action runs: %v", m)
			}
		})
	}
}
