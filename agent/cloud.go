package agent

import (
	"context"
	"log/slog"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metrics"
)

// NewAPIClient returns the Hetzner Cloud API client for cfg (token already
// resolved) whose requests, codes, 429s and rate-limit headers feed m. One
// client (and so one budget) serves the whole process.
func NewAPIClient(cfg config.Config, m *metrics.Metrics, log *slog.Logger, version string) *cloudapi.Client {
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

// CloudAdapter adapts *cloudapi.Client to the floatingip.Cloud port.
type CloudAdapter struct {
	C *cloudapi.Client
}

var _ floatingip.Cloud = CloudAdapter{}

func fromAPIFloatingIP(f cloudapi.FloatingIP) floatingip.FloatingIP {
	return floatingip.FloatingIP{
		ID: f.ID, Name: f.Name, Type: f.Type, IP: f.IP, Network: f.Network,
		ServerID: f.ServerID, Labels: f.Labels,
	}
}

func fromAPIAction(a cloudapi.Action) floatingip.Action {
	act := floatingip.Action{ID: a.ID, Status: a.Status}
	if a.ErrorCode != "" || a.ErrorMessage != "" {
		act.Error = a.ErrorCode + ": " + a.ErrorMessage
	}
	return act
}

// GetFloatingIP reads one floating IP by ID or name.
func (a CloudAdapter) GetFloatingIP(ctx context.Context, idOrName string) (floatingip.FloatingIP, error) {
	f, err := a.C.GetFloatingIP(ctx, idOrName)
	if err != nil {
		return floatingip.FloatingIP{}, err
	}
	return fromAPIFloatingIP(f), nil
}

// ListFloatingIPs lists the floating IPs matching selector ("" is all).
func (a CloudAdapter) ListFloatingIPs(ctx context.Context, selector string) ([]floatingip.FloatingIP, error) {
	fs, err := a.C.ListFloatingIPs(ctx, selector)
	if err != nil {
		return nil, err
	}
	out := make([]floatingip.FloatingIP, 0, len(fs))
	for _, f := range fs {
		out = append(out, fromAPIFloatingIP(f))
	}
	return out, nil
}

// Assign assigns a floating IP to a server.
func (a CloudAdapter) Assign(ctx context.Context, fipID, serverID int64) (floatingip.Action, error) {
	act, err := a.C.Assign(ctx, fipID, serverID)
	if err != nil {
		return floatingip.Action{}, err
	}
	return fromAPIAction(act), nil
}

// WaitAction waits until the action is no longer running.
func (a CloudAdapter) WaitAction(ctx context.Context, actionID int64) (floatingip.Action, error) {
	act, err := a.C.WaitAction(ctx, actionID)
	return fromAPIAction(act), err
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
