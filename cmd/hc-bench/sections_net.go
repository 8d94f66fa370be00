package main

import (
	"context"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/scenario"
)

// The private-network sections of issue 13.

func runRestore(ctx context.Context, h *harness) bench.Section {
	return agentDurationsSection(ctx, h, "hc-agent running on a configured server with 20 alias IPs and a floating IP assigned; the harness deletes "+
		"one alias IP (netlink, as `ip addr del` or a DHCP client's flush does), the next one each trial, and the floating IP address "+
		"on the public NIC (4 trials: hc-agent allows 5 restores a minute per address before it backs off); from the deletion to "+
		"the address being back in the kernel, read every 1 ms; hc-agent restores from address and route events (after 50 ms "+
		"without further deletions), not from its 30 s poll or the floating IP manager's 20 min read",
		func(ctx context.Context, env scenario.Env) ([]durationCase, error) {
			r, err := scenario.RunRestore(ctx, env)
			return []durationCase{
				{"restore after external deletion (alias IP)", r.Alias},
				{"restore after external deletion (floating IP)", r.FloatingIP},
			}, err
		})
}

func runBlackhole(ctx context.Context, h *harness) bench.Section {
	return agentDurationsSection(ctx, h, "one server whose private NIC a DHCP client configured, with 169.254.169.254/32 via the private gateway "+
		"in place before hc-agent starts (metadata unreachable); from starting `hc-agent run` to hcagent_metadata_blackholed 1 "+
		"(pin_metadata_route off), and to metadata answering from the server and /status ready (pin on), polled every 5 ms; "+
		"between trials the agent is stopped, its state removed and the black hole put back",
		func(ctx context.Context, env scenario.Env) ([]durationCase, error) {
			b, err := scenario.RunBlackholeBoot(ctx, env)
			return []durationCase{
				{"black hole at boot → reported (pin off)", b.Reported},
				{"black hole at boot → metadata reachable (pin on)", b.Reachable},
				{"black hole at boot → ready (pin on)", b.Ready},
			}, err
		})
}
