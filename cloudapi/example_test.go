package cloudapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// Example moves a floating IP of a failover group to this server, the way
// the agent does on failover.
func Example() {
	sim := cloudapitest.New(cloudapitest.WithTokens("token"))
	self := sim.AddServer(cloudapitest.Server{Name: "web2", Labels: map[string]string{"hc-agent/group": "web"}})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.10/32"), Labels: map[string]string{"hc-agent/group": "web"}})

	budget := cloudapi.NewBudget() // one per process, shared by every client
	c := cloudapi.New("token",
		cloudapi.WithEndpoint("http://sim/v1"),
		cloudapi.WithHTTPClient(&http.Client{Transport: sim.Transport()}),
		cloudapi.WithBudget(budget))
	ctx := context.Background()

	fips, err := c.ListFloatingIPs(ctx, "hc-agent/group=web")
	if err != nil {
		fmt.Println(err)
		return
	}
	act, err := c.Assign(ctx, fips[0].ID, self)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.WaitAction(ctx, act.ID); err != nil {
		fmt.Println(err)
		return
	}
	fip, _ := c.GetFloatingIP(ctx, "vip")
	fmt.Println(fip.Network, "now on server", fip.ServerID == self)
	fmt.Println("requests left:", budget.Remaining(), "of", budget.Limit())
	// Output:
	// 203.0.113.10/32 now on server true
	// requests left: 3597 of 3600
}
