package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi/labelselector"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
)

// ipv6HostOf parses floating_ips.ipv6_host; "" (a configuration built
// without config.Default) is the zero Addr, which floating IP code refuses
// for IPv6.
func ipv6HostOf(cfg config.Config) (netip.Addr, error) {
	if cfg.FloatingIPs.IPv6Host == "" {
		return netip.Addr{}, nil
	}
	return cfg.FloatingIPs.IPv6HostAddr()
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
		mc, err := managerConfig(env)
		if err != nil {
			return nil, fmt.Errorf("create floating ip manager: %w", err)
		}
		api := NewAPIClient(env.Config, env.Metrics, env.Log, env.Version)
		m := floatingip.NewManager(mc, CloudAdapter{C: api}, host, env.Log.With("component", ComponentFloatingIP))
		return fipComponent{m: m}, nil
	}
}

// managerConfig maps the configuration onto the Manager's, with hooks that
// feed the floating IP metrics (a floating IP that left the API's list, the
// label selector or the Manager's care loses its series) and report every
// sync to the agent (status, reconcile metrics, readiness).
func managerConfig(env Env) (floatingip.ManagerConfig, error) {
	v6, err := ipv6HostOf(env.Config)
	if err != nil {
		return floatingip.ManagerConfig{}, err
	}
	excl, err := groupOwned(env.Config.Groups)
	if err != nil {
		return floatingip.ManagerConfig{}, err
	}
	m := env.Metrics
	return floatingip.ManagerConfig{
		Self:     env.Summary.InstanceID,
		Selector: env.Config.FloatingIPs.LabelSelector,
		IPv6Host: v6,
		Interval: env.Config.API.PollInterval,
		Exclude:  excl,
		OnSync: func(f floatingip.FloatingIP, configured, assigned bool) {
			m.SetFloatingIP(fipLabel(f), configured, assigned)
		},
		OnGone: func(f floatingip.FloatingIP) { m.DeleteFloatingIP(fipLabel(f)) },
		AfterSync: func(d time.Duration, err error) {
			if env.Report != nil {
				env.Report(Report{Component: ComponentFloatingIP, Duration: d, Err: err})
			}
		},
	}, nil
}

// fipComponent runs the Manager without exposing its Trigger. The agent's
// watchdog keep-alive triggers the component it becomes ready on every half
// watchdog interval; each Manager sync is an API read, so that would turn
// a few reads per hour into hundreds. Without a Trigger the keep-alive
// pings the watchdog itself.
type fipComponent struct {
	m *floatingip.Manager
}

// Run runs the Manager until ctx is done.
func (c fipComponent) Run(ctx context.Context) error { return c.m.Run(ctx) }

// floatingIPOwnedPath is where the applier keeps its ownership record.
func floatingIPOwnedPath(cfg config.Config) string {
	dir := cfg.StateDir
	if dir == "" {
		dir = config.DefaultStateDir
	}
	return filepath.Join(dir, FloatingIPOwnedFile)
}
