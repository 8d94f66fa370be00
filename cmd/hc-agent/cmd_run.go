package main

import (
	"context"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/metrics"
)

// runCommand is the daemon: it hands the checked configuration to
// agent.RunDaemon and runs until SIGINT or SIGTERM.
func runCommand() command {
	return command{
		name:    "run",
		summary: "run the daemon (what the systemd unit starts)",
		usage: `

Runs the agent in the foreground until SIGINT or SIGTERM: it configures the
private networks and floating IPs of this server and takes part in its
failover groups. The configuration must pass check-config, otherwise run
exits with status 1 and prints every problem.

Under systemd (Type=notify) it reports READY=1 after the first successful
reconcile, says what it does in STATUS= and pings the watchdog from its
reconcile loop. On SIGTERM a holder hands its floating IPs to a healthy peer
before it exits. Metrics, /healthz and /status are served on metrics.listen
(default 127.0.0.1:9183).`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			cfg, path, err := env.loadCheckedConfig()
			if err != nil {
				return err
			}
			log := env.logger(cfg)
			log.Info("hc-agent starting", "version", version, "commit", commit, "config", path,
				"groups", len(cfg.Groups), "api_token", cfg.API.Token)
			build := metrics.BuildInfo{Version: version, Commit: commit}
			if err := agent.RunDaemon(ctx, cfg, agent.Options{Log: log, Build: build}, nil); err != nil {
				return err
			}
			log.Info("hc-agent stopping", "reason", context.Cause(ctx).Error())
			return nil
		},
	}
}
