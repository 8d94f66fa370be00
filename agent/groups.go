package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
)

// groupsParams is what newGroups needs, all built once by RunDaemon.
type groupsParams struct {
	cfg      config.Config
	self     int64
	ipv6Host netip.Addr
	api      *cloudapi.Client // the process's one client (one budget)
	host     floatingip.Host
	// nets gives the default bind address (the first private IP) and the
	// networks private VIPs live in.
	nets interface {
		PrivateNetworks(ctx context.Context) ([]metadata.PrivateNetwork, error)
	}
	// newMembership starts the membership of one group in memberlist mode
	// (newGossip; tests pass an in-memory one); bind is the private
	// address to gossip on and peers the other members' addresses.
	newMembership func(g config.Group, self int64, bind string, peers []string, log *slog.Logger, m *metrics.Metrics) (floatingip.Membership, error)
	// privateHost configures private VIPs on the private NICs
	// (netconf.PrivateVIPs); groups with private_ips need it.
	privateHost floatingip.PrivateHost
	// egress follows the floating IPs that groups with egress: true hold
	// (netconf.EgressController); nil leaves egress off.
	egress floatingip.Egress
	// share, when set, wraps each group's membership so that the floating
	// IP manager follows the holder's reads (floatingip.ReadShare).
	share   *floatingip.ReadShare
	metrics *metrics.Metrics
	log     *slog.Logger
}

// groupAdapter makes a *floatingip.Group an agent Group; m is its
// membership (nil in keepalived mode), which a reload changes in place.
type groupAdapter struct {
	*floatingip.Group
	m floatingip.Membership
}

// gossip returns the group's memberlist membership, if it has one, from
// under the read share's wrapper.
func (g groupAdapter) gossip() (*floatingip.Gossip, bool) {
	m := g.m
	if u, ok := m.(interface{ Unwrap() floatingip.Membership }); ok {
		m = u.Unwrap()
	}
	gs, ok := m.(*floatingip.Gossip)
	return gs, ok
}

func (g groupAdapter) Status() any  { return g.Group.Status() }
func (g groupAdapter) Role() string { return string(g.Group.Status().Role) }

// newGroups creates one floatingip.Group per configured group, all on the
// one API client. On an error the memberships created so far are left, so
// that a retry can bind again.
func newGroups(ctx context.Context, p groupsParams) ([]Group, error) {
	var groups []Group
	var memberships []floatingip.Membership
	for _, g := range p.cfg.Groups {
		grp, m, err := newGroup(ctx, p, g)
		if err != nil {
			for _, m := range memberships {
				m.Leave(context.WithoutCancel(ctx))
			}
			return nil, err
		}
		if m != nil {
			memberships = append(memberships, m)
		}
		groups = append(groups, groupAdapter{Group: grp, m: m})
	}
	return groups, nil
}

// resolvePeers returns the group's peer addresses (configured and
// discovered by peer_selector) and this server's own private addresses:
// the default gossip address, and never a peer (a shared peer list may
// name every member). ownErr is why the own addresses are unknown.
func (p groupsParams) resolvePeers(ctx context.Context, g config.Group) (peers []string, own []netip.Addr, nets []metadata.PrivateNetwork, ownErr, err error) {
	if p.nets != nil {
		nets, ownErr = p.nets.PrivateNetworks(ctx)
		for _, n := range nets {
			own = append(own, n.IP)
			own = append(own, n.AliasIPs...)
		}
	}
	peers = peerAddresses(g.Peers, g.Bind, own)
	if g.PeerSelector != "" {
		servers, err := p.api.ListServers(ctx, g.PeerSelector)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("discover peers of group %s: %w", g.Name, err)
		}
		for _, s := range servers {
			if s.ID == p.self || len(s.PrivateNets) == 0 {
				continue
			}
			peers = append(peers, s.PrivateNets[0].IP.String())
		}
	}
	return peers, own, nets, ownErr, nil
}

// NewGroup builds one group at run time (a reload added it); it is
// GroupFactory.
func (p groupsParams) NewGroup(ctx context.Context, g config.Group) (Group, error) {
	grp, m, err := newGroup(ctx, p, g)
	if err != nil {
		return nil, err
	}
	return groupAdapter{Group: grp, m: m}, nil
}

// Peers is GroupFactory: the group's peer addresses, as at start.
func (p groupsParams) Peers(ctx context.Context, g config.Group) ([]string, error) {
	peers, _, _, _, err := p.resolvePeers(ctx, g)
	return peers, err
}

// newGroup creates one group and, in memberlist mode, its membership.
func newGroup(ctx context.Context, p groupsParams, g config.Group) (*floatingip.Group, floatingip.Membership, error) {
	peers, own, nets, ownErr, err := p.resolvePeers(ctx, g)
	if err != nil {
		return nil, nil, err
	}
	gc := floatingip.GroupConfig{
		Name:               g.Name,
		Self:               p.self,
		Priority:           g.Priority,
		FloatingIPs:        g.FloatingIPs,
		FloatingIPSelector: g.FloatingIPSelector,
		ExpectedSize:       len(peers) + 1,
		Mode:               g.Mode,
		Preempt:            g.Preempt,
		PreemptDelay:       g.PreemptDelay,
		MaxMovesPerMinute:  g.MaxMovesPerMinute,
		Backoff:            config.DefaultGroupBackoff,
		ActionTimeout:      config.DefaultGroupActionTimeout,
		RefreshInterval:    config.DefaultGroupRefreshInterval,
		SecondPathTTL:      config.DefaultGroupSecondPathTTL,
		StartupDelay:       config.DefaultGroupStartupDelay,
		HandoverTimeout:    config.DefaultGroupHandoverTimeout,
		IPv6Host:           p.ipv6Host,
		Health:             healthConfig(g.Health),
	}
	deps := floatingip.GroupDeps{
		Cloud:  p.api,
		Host:   p.host,
		Urgent: cloudapi.WithUrgent,
		Hooks:  GroupHooks(p.metrics),
		Log:    p.log,
	}
	if gc.ExpectedSize == 2 {
		deps.PeerCheck = apiPeerCheck(p.api)
	}
	if deps.Handler, err = groupHandler(p, gc, deps, g, nets, ownErr); err != nil {
		return nil, nil, err
	}
	switch g.Mode {
	case config.ModeKeepalived:
		// The group's Run reads the FIFO: a group that never runs (a later
		// group failed, the creation is retried) holds no reader.
		deps.NotifyFIFO, deps.NotifyInstance = g.KeepalivedFIFO, g.KeepalivedInstance
	default:
		bind := g.Bind
		if bind == "" {
			if ownErr != nil {
				return nil, nil, fmt.Errorf("group %s: find the private address to gossip on: %w", g.Name, ownErr)
			}
			if len(own) > 0 {
				bind = own[0].String()
			}
		}
		if bind == "" {
			return nil, nil, fmt.Errorf("group %s: no private network to gossip on; set bind", g.Name)
		}
		// The membership adds the group to its log lines itself.
		m, err := p.newMembership(g, p.self, bind, peers, p.log, p.metrics)
		if err != nil {
			return nil, nil, fmt.Errorf("group %s: %w", g.Name, err)
		}
		deps.Membership = m
		if p.share != nil {
			deps.Membership = p.share.Membership(m)
		}
	}
	grp, err := floatingip.NewGroup(gc, deps)
	if err != nil {
		if deps.Membership != nil {
			deps.Membership.Leave(context.WithoutCancel(ctx))
		}
		return nil, nil, err
	}
	return grp, deps.Membership, nil
}

// peerAddresses is the configured peer list without duplicates and without
// this server's own addresses (bind and own).
func peerAddresses(peers []string, bind string, own []netip.Addr) []string {
	skip := map[string]bool{}
	if bind != "" {
		skip[bind] = true
	}
	for _, a := range own {
		skip[a.String()] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range peers {
		host := p
		if ap, err := netip.ParseAddrPort(p); err == nil {
			host = ap.Addr().String()
		} else if a, err := netip.ParseAddr(p); err == nil {
			host = a.String()
		}
		if skip[host] || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// apiPeerCheck is the second path of a group of two: the API's view of the
// peer server. A server that is off, deleted or not running is down.
func apiPeerCheck(api *cloudapi.Client) floatingip.PeerCheck {
	return func(ctx context.Context, peerID int64) (floatingip.PeerState, error) {
		s, err := api.GetServer(ctx, peerID)
		if cloudapi.IsError(err, "not_found") {
			return floatingip.PeerDown, nil
		}
		if err != nil {
			return floatingip.PeerUnknown, fmt.Errorf("read peer server %s: %w", strconv.FormatInt(peerID, 10), err)
		}
		if s.Status == "running" {
			return floatingip.PeerUp, nil
		}
		return floatingip.PeerDown, nil
	}
}

// healthConfig maps a group's health check onto the group's.
func healthConfig(h config.HealthCheck) floatingip.HealthConfig {
	return floatingip.HealthConfig{
		Type: h.Type, Target: h.Target, Command: h.Command,
		Interval: h.Interval, Timeout: h.Timeout, Rise: h.Rise, Fall: h.Fall,
	}
}
