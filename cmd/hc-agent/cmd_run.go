package main

import (
	"context"
)

// runCommand is the daemon. For now it loads and checks the configuration
// and waits for SIGINT or SIGTERM; the daemon loop replaces the body of run.
func runCommand() command {
	return command{
		name:    "run",
		summary: "run the daemon (what the systemd unit starts)",
		usage: `

Runs the agent in the foreground until SIGINT or SIGTERM: it configures the
private networks and floating IPs of this server and takes part in its
failover groups. The configuration must pass check-config, otherwise run
exits with status 1 and prints every problem.`,
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
			// TODO(ops): the daemon loop goes here.
			<-ctx.Done()
			log.Info("hc-agent stopping", "reason", context.Cause(ctx).Error())
			return nil
		},
	}
}
