package cloudapitest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// Example serves the simulator on a loopback socket and drives it with the
// official client. Inside a testing/synctest bubble use Sim.Transport
// instead of a socket.
func Example() {
	sim := cloudapitest.New(cloudapitest.WithTokens("token"))
	defer sim.Close()
	srvID := sim.AddServer(cloudapitest.Server{Name: "web1"})
	fipID := sim.AddFloatingIP(cloudapitest.FloatingIP{Prefix: netip.MustParsePrefix("203.0.113.1/32")})
	sim.OnAssign(func(fip, server int64, ip netip.Prefix) {
		fmt.Println("route", ip, "to server", server == srvID)
	})

	ts := httptest.NewServer(sim)
	defer ts.Close()
	hc := hcloud.NewClient(hcloud.WithToken("token"), hcloud.WithEndpoint(ts.URL+"/v1"))
	act, _, err := hc.FloatingIP.Assign(context.Background(), &hcloud.FloatingIP{ID: fipID}, &hcloud.Server{ID: srvID})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(act.Command, act.Status)
	// Output:
	// route 203.0.113.1/32 to server true
	// assign_floating_ip success
}
