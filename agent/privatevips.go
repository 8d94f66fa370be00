package agent

import (
	"fmt"
	"net/netip"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
)

// groupHandler returns the Handler of group g when it needs more than the
// floating IP handler that floatingip.NewGroup builds by itself: private
// VIPs (alias and route), egress, or both. It returns nil when the default
// is enough. nets are this server's private networks from the metadata
// (netsErr when they could not be read); each private VIP is checked
// against them (config.PrivateIP.Network) and an error names its key.
func groupHandler(p groupsParams, gc floatingip.GroupConfig, deps floatingip.GroupDeps,
	g config.Group, nets []metadata.PrivateNetwork, netsErr error) (floatingip.Handler, error) {
	if len(g.PrivateIPs) == 0 && (!g.Egress || p.egress == nil) {
		return nil, nil
	}
	self := gc.Self
	var list []floatingip.Handler
	if len(g.FloatingIPs) > 0 || g.FloatingIPSelector != "" {
		var changed func(floatingip.FloatingIP, bool, bool)
		if hook := deps.Hooks.FIPChanged; hook != nil {
			changed = func(f floatingip.FloatingIP, configured, assigned bool) { hook(g.Name, f, configured, assigned) }
		}
		fh, err := floatingip.NewFloatingIPs(floatingip.FloatingIPsConfig{
			Self: self, Refs: g.FloatingIPs, Selector: g.FloatingIPSelector,
			Owner: "group:" + g.Name, IPv6Host: gc.IPv6Host, ActionTimeout: gc.ActionTimeout,
			Cloud: deps.Cloud, Host: deps.Host, Changed: changed,
		})
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", g.Name, err)
		}
		if g.Egress && p.egress != nil {
			list = append(list, floatingip.NewEgressFloatingIPs(fh, g.Name, p.egress))
		} else {
			list = append(list, fh)
		}
	}

	if len(g.PrivateIPs) > 0 {
		if netsErr != nil {
			return nil, fmt.Errorf("group %s: read private networks for private_ips: %w", g.Name, netsErr)
		}
		if p.privateHost == nil {
			return nil, fmt.Errorf("group %s: private_ips are not available in this build", g.Name)
		}
		byKind := map[config.Via][]floatingip.PrivateVIP{}
		for j, pip := range g.PrivateIPs {
			n, err := pip.Network(nets)
			if err != nil {
				return nil, fmt.Errorf("group %s: private_ips[%d].ip: %w", g.Name, j, err)
			}
			byKind[pip.Via] = append(byKind[pip.Via], floatingip.PrivateVIP{IP: pip.Addr(), NetworkID: n.NetworkID, MAC: n.MACAddress, SelfIP: n.IP})
		}
		m := p.metrics
		base := floatingip.PrivateVIPsConfig{
			Self: self, ActionTimeout: gc.ActionTimeout, Host: p.privateHost, ServerSelector: g.PeerSelector,
			Changed: func(vip netip.Addr, configured, assigned bool) {
				m.SetPrivateIP(g.Name, vip.String(), configured, assigned)
			},
		}
		if vips := byKind[config.ViaAlias]; len(vips) > 0 {
			c := base
			c.VIPs = vips
			h, err := floatingip.NewAliasIPs(c, p.api)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g.Name, err)
			}
			list = append(list, h)
		}
		if vips := byKind[config.ViaRoute]; len(vips) > 0 {
			c := base
			c.VIPs = vips
			h, err := floatingip.NewRouteIPs(c, p.api)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g.Name, err)
			}
			list = append(list, h)
		}
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return floatingip.Handlers{Self: self, List: list}, nil
}
