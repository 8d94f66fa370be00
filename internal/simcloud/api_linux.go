package simcloud

import (
	"fmt"
	"maps"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// ConnectAPI makes sim the cloud's API: it serves sim at APIEndpoint, adds
// every server and floating IP of the cloud to sim (same IDs, names,
// addresses, labels and holders), mirrors servers and floating IPs added
// later, and routes floating IPs when sim's assign and unassign actions
// succeed. Private-network changes made after a server was added (attach,
// detach, alias IPs) are not mirrored: the agent reads those from metadata.
func (c *Cloud) ConnectAPI(sim *cloudapitest.Sim) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sim != nil {
		return fmt.Errorf("connect api: already connected")
	}
	c.sim = sim
	for _, s := range c.servers {
		c.mirrorServerLocked(s)
	}
	for _, f := range c.fips {
		c.mirrorFIPLocked(f)
	}
	sim.OnAssign(c.OnAssign)
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
			AliasIPs:   a.aliases,
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
