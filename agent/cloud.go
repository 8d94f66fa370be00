package agent

import (
	"log/slog"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metrics"
)

// newAPIClient returns the Hetzner Cloud API client for cfg (token already
// resolved) whose requests, codes, 429s and rate-limit headers feed m.
// RunDaemon calls it once: one client, and so one budget, serves the whole
// process.
func newAPIClient(cfg config.Config, m *metrics.Metrics, log *slog.Logger, version string) *cloudapi.Client {
	var budget *cloudapi.Budget
	budget = cloudapi.NewBudget(cloudapi.WithObserver(func(endpoint string, code int) {
		m.ObserveAPIRequest(endpoint, code)
		if code != 0 {
			m.SetRateLimit(budget.Remaining(), budget.Limit())
		}
	}))
	opts := []cloudapi.Option{cloudapi.WithBudget(budget), cloudapi.WithLogger(log), cloudapi.WithUserAgent(version)}
	if cfg.API.Endpoint != "" {
		opts = append(opts, cloudapi.WithEndpoint(cfg.API.Endpoint))
	}
	return cloudapi.New(cfg.API.Token.Reveal(), opts...)
}

// GroupHooks returns the floatingip hooks that feed m: role, members alive
// and healthy, moves with their duration, and per floating IP whether it is
// configured here and assigned here.
func GroupHooks(m *metrics.Metrics) floatingip.Hooks {
	return floatingip.Hooks{
		RoleChanged:    func(group string, role floatingip.Role) { m.SetGroupRole(group, string(role)) },
		Moved:          func(group string, mv floatingip.MoveRecord) { m.ObserveMove(group, mv.Duration, string(mv.Result)) },
		MembersChanged: func(group string, alive, healthy int) { m.SetGroupMembers(group, alive, healthy) },
		FIPChanged: func(group string, f floatingip.FloatingIP, configured, assigned bool) {
			m.SetFloatingIP(fipLabel(f), configured, assigned)
		},
	}
}

// fipLabel is the ip label of a floating IP: the address for IPv4, the
// network for IPv6 (what the cloud routes).
func fipLabel(f floatingip.FloatingIP) string {
	if f.Type == "ipv6" && f.Network.IsValid() {
		return f.Network.String()
	}
	return f.IP.String()
}
