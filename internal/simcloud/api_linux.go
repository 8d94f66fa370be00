package simcloud

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// ConnectAPI makes sim the cloud's API: it serves sim at APIEndpoint, adds
// every network, server and floating IP of the cloud to sim (same IDs,
// names, addresses, alias IPs, labels and holders), mirrors networks,
// servers and floating IPs added later, and follows sim's actions when they
// succeed: assign and unassign route floating IPs, change_alias_ips routes
// alias IPs (and the metadata follows after the lag), add_route and
// delete_route change the network's router. Attaching or detaching a
// network after a server was added is not mirrored: the agent reads that
// from metadata.
func (c *Cloud) ConnectAPI(sim *cloudapitest.Sim) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sim != nil {
		return fmt.Errorf("connect api: already connected")
	}
	c.sim = sim
	for _, n := range c.networks {
		c.mirrorNetworkLocked(n)
	}
	for _, s := range c.servers {
		c.mirrorServerLocked(s)
	}
	for _, f := range c.fips {
		c.mirrorFIPLocked(f)
	}
	sim.OnAssign(c.OnAssign)
	sim.OnAliasIPs(c.OnAliasIPs)
	sim.OnRoutes(c.OnRoutes)
	c.SetAPI(sim)
	return nil
}

// mirrorServerLocked adds the server to the connected simulator, if any.
func (c *Cloud) mirrorServerLocked(s *Server) {
	if c.sim == nil {
		return
	}
	srv := cloudapitest.Server{
		ID:         s.id,
		Name:       s.name,
		PublicIPv4: s.publicIPv4,
		PublicIPv6: s.publicIPv6,
		Labels:     maps.Clone(s.labels),
	}
	for _, a := range s.attached {
		srv.PrivateNets = append(srv.PrivateNets, cloudapitest.PrivateNet{
			NetworkID:  a.net.id,
			IP:         a.ip,
			AliasIPs:   slices.Clone(a.aliases),
			MACAddress: a.mac.String(),
		})
	}
	c.sim.AddServer(srv)
}

// mirrorFIPLocked adds the floating IP to the connected simulator, if any.
func (c *Cloud) mirrorFIPLocked(f *FloatingIP) {
	if c.sim == nil {
		return
	}
	fip := cloudapitest.FloatingIP{
		ID:     f.id,
		Name:   f.name,
		Prefix: f.ip,
		Labels: maps.Clone(f.labels),
	}
	if f.holder != nil {
		fip.ServerID = f.holder.id
	}
	c.sim.AddFloatingIP(fip)
}
