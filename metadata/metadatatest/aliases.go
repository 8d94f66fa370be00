package metadatatest

import (
	"net/netip"
	"slices"
	"time"

	"github.com/hc-agent/hc-agent/metadata"
)

// SetAliasLag delays the effect of SetAliasIPs (and so of FollowAliasIPs)
// by d: on Hetzner Cloud the metadata service shows an alias change a
// little after the API's action succeeded. 0 (the default) applies changes
// at once. Under testing/synctest the lag runs on the bubble's clock.
func (s *Server) SetAliasLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aliasLag = d
}

// SetAliasIPs replaces the alias_ips of the private network with the ID in
// the document set with SetPrivateNetworks, after the alias lag. A network
// the document does not list is ignored, as the real service shows only
// the caller's own attachments.
func (s *Server) SetAliasIPs(networkID int64, ips []netip.Addr) {
	ips = slices.Clone(ips)
	if ips == nil {
		ips = []netip.Addr{}
	}
	apply := func() {
		pns := metadata.ClonePrivateNetworks(s.pns)
		for i := range pns {
			if pns[i].NetworkID == networkID {
				pns[i].AliasIPs = slices.Clone(ips)
			}
		}
		s.setPrivateNetworksLocked(pns)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aliasLag <= 0 {
		apply()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(s.aliasLag, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.timers[t]; !ok {
			return // stopped by Close
		}
		delete(s.timers, t)
		apply()
	})
	s.timers[t] = struct{}{}
}

// FollowAliasIPs returns a hook for cloudapitest.Sim.OnAliasIPs that makes
// this server's private-networks document follow the API's alias changes
// for the server with serverID (after the alias lag) and ignores other
// servers' changes:
//
//	sim.OnAliasIPs(md.FollowAliasIPs(serverID))
func (s *Server) FollowAliasIPs(serverID int64) func(serverID, networkID int64, ips []netip.Addr) {
	return func(id, networkID int64, ips []netip.Addr) {
		if id == serverID {
			s.SetAliasIPs(networkID, ips)
		}
	}
}

// PrivateNetworks returns the private-networks document as it is served
// now.
func (s *Server) PrivateNetworks() []metadata.PrivateNetwork {
	s.mu.Lock()
	defer s.mu.Unlock()
	return metadata.ClonePrivateNetworks(s.pns)
}
