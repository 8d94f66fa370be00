package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi/labelselector"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

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

// managerConfig maps the configuration onto the Manager's, with hooks that
// feed the floating IP metrics (a floating IP that left the API's list, the
// label selector or the Manager's care loses its series) and report every
// sync to the agent (status, reconcile metrics, readiness).
func managerConfig(cfg config.Config, sum metadata.Summary, ipv6Host netip.Addr, m *metrics.Metrics, report func(Report)) (floatingip.ManagerConfig, error) {
	excl, err := groupOwned(cfg.Groups)
	if err != nil {
		return floatingip.ManagerConfig{}, err
	}
	return floatingip.ManagerConfig{
		Self:     sum.InstanceID,
		Selector: cfg.FloatingIPs.LabelSelector,
		IPv6Host: ipv6Host,
		Interval: cfg.API.PollInterval,
		RetryMin: config.DefaultAPIRetryMin,
		Exclude:  excl,
		OnSync: func(f floatingip.FloatingIP, configured, assigned bool) {
			m.SetFloatingIP(fipLabel(f), configured, assigned)
		},
		OnGone: func(f floatingip.FloatingIP) { m.DeleteFloatingIP(fipLabel(f)) },
		AfterSync: func(d time.Duration, err error) {
			report(Report{Component: ComponentFloatingIP, Duration: d, Err: err})
		},
	}, nil
}

// managerCadence is the Manager's OnMode: it tells the agent the read
// mode for /status and how long /healthz may wait for the next sync. A
// reader syncs at most 1.2 intervals apart (±20% jitter, retries capped at
// the interval); a follower only on events.
func managerCadence(a *Agent, interval time.Duration) func(floatingip.ReadMode, string) {
	return func(mode floatingip.ReadMode, _ string) {
		period := interval * 12 / 10
		if mode == floatingip.ReadModeFollower {
			period = 0
		}
		a.SetCadence(ComponentFloatingIP, string(mode), period)
	}
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

// ManagerPrefixes returns the floating IP addresses the daemon's manager
// would configure on server self now: one read of the floating IPs through
// api, the same selection as the daemon (label selector, group-owned ones
// left to the groups, the IPv6 host part), and no host change. `hc-agent
// apply --dry-run` plans them.
func ManagerPrefixes(ctx context.Context, cfg config.Config, self int64, api floatingip.Cloud) ([]netip.Prefix, error) {
	ipv6Host, err := cfg.FloatingIPs.IPv6HostAddr()
	if err != nil {
		return nil, err
	}
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	mc, err := managerConfig(cfg, metadata.Summary{InstanceID: self}, ipv6Host, m, func(Report) {})
	if err != nil {
		return nil, err
	}
	var rec planHost
	mgr, err := floatingip.NewManager(mc, api, &rec, nil)
	if err != nil {
		return nil, err
	}
	if err := mgr.Sync(ctx); err != nil {
		return nil, err
	}
	return rec.prefixes, nil
}

// planHost is a floatingip.Host that only remembers what it was asked
// to configure.
type planHost struct{ prefixes []netip.Prefix }

func (h *planHost) Set(_ context.Context, _ string, ps []netip.Prefix) error {
	h.prefixes = slices.Clone(ps)
	return nil
}
