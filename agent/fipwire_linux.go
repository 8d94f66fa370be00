package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/hc-agent/hc-agent/cloudapi/labelselector"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
)

// FloatingIPOwnedFile is the floating IP ownership record inside the state
// directory.
const FloatingIPOwnedFile = "floatingip-owned.json"

// ipv6HostOf parses floating_ips.ipv6_host; "" is the zero Addr (the
// default, ::1).
func ipv6HostOf(cfg config.Config) (netip.Addr, error) {
	h := cfg.FloatingIPs.IPv6Host
	if h == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parse floating_ips.ipv6_host %q: %w", h, err)
	}
	return a, nil
}

// groupOwned returns Exclude for the Manager: true for a floating IP that a
// configured failover group names (by name or ID) or selects by label. The
// groups move and configure those themselves.
func groupOwned(groups []config.Group) (func(floatingip.FloatingIP) bool, error) {
	names := map[string]bool{}
	var sels []labelselector.Selector
	for _, g := range groups {
		for _, n := range g.FloatingIPs {
			names[n] = true
		}
		if g.FloatingIPSelector != "" {
			s, err := labelselector.Parse(g.FloatingIPSelector)
			if err != nil {
				return nil, fmt.Errorf("parse floating ip selector of group %s: %w", g.Name, err)
			}
			sels = append(sels, s)
		}
	}
	return func(f floatingip.FloatingIP) bool {
		if names[f.Name] || names[strconv.FormatInt(f.ID, 10)] {
			return true
		}
		for _, s := range sels {
			if s.Matches(f.Labels) {
				return true
			}
		}
		return false
	}, nil
}

// floatingIPFactory returns Deps.NewFloatingIP: the Manager that keeps the
// floating IPs assigned to this server (outside failover groups) configured
// through host, reading the API every api.poll_interval (jittered).
func floatingIPFactory(host floatingip.Host) func(context.Context, Env) (Component, error) {
	return func(_ context.Context, env Env) (Component, error) {
		v6, err := ipv6HostOf(env.Config)
		if err != nil {
			return nil, fmt.Errorf("create floating ip manager: %w", err)
		}
		excl, err := groupOwned(env.Config.Groups)
		if err != nil {
			return nil, fmt.Errorf("create floating ip manager: %w", err)
		}
		api := NewAPIClient(env.Config, env.Metrics, env.Log, env.Version)
		return floatingip.NewManager(floatingip.ManagerConfig{
			Self:     env.Summary.InstanceID,
			Selector: env.Config.FloatingIPs.LabelSelector,
			IPv6Host: v6,
			Interval: env.Config.API.PollInterval,
			Exclude:  excl,
		}, CloudAdapter{C: api}, host, env.Log.With("component", ComponentFloatingIP)), nil
	}
}

// floatingIPOwnedPath is where the applier keeps its ownership record.
func floatingIPOwnedPath(cfg config.Config) string {
	dir := cfg.StateDir
	if dir == "" {
		dir = config.DefaultStateDir
	}
	return filepath.Join(dir, FloatingIPOwnedFile)
}
