package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/metrics"
	"github.com/hc-agent/hc-agent/reload"
	"github.com/hc-agent/hc-agent/stackdump"
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
exits with status 78 (EX_CONFIG) and prints every problem; the unit does not
restart it then (RestartPreventExitStatus=78).

Under systemd (Type=notify) it reports READY=1 after the first successful
reconcile, says what it does in STATUS= and pings the watchdog from its
reconcile loop. On SIGTERM a holder hands its floating IPs to a healthy peer
before it exits; SIGHUP (systemctl reload, hc-agent reload) re-reads the
configuration. Metrics, /healthz and /status are served on metrics.listen
(default 127.0.0.1:9183); handover, reload and status also on the control
socket in runtime_dir.`,
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
			// SIGHUP reloads; caught before anything runs, since its
			// default action ends the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			// The watchdog's SIGABRT prints the stuck loop's stack only.
			stacks := stackdump.New()
			stacks.Watch(ctx, log, env.stderr, os.Exit, stackdump.WatchdogSignal)

			keys, err := reload.LoadKeys(cfg)
			if err != nil {
				return err
			}
			build := metrics.BuildInfo{Version: version, Commit: commit}
			// Once settled, give back what only start-up used (issue 14).
			onReady := func() { trimAfter(ctx, log, trimDelay) }
			d, err := agent.NewDaemon(cfg, agent.Options{Log: log, Build: build, Stacks: stacks, SetLogLevel: env.setLogLevel, OnReady: onReady}, nil)
			if err != nil {
				return err
			}
			load := func() (reload.Loaded, error) {
				next, _, err := env.loadCheckedConfig() // prints every problem to the log
				if err != nil {
					return reload.Loaded{}, err
				}
				keys, err := reload.LoadKeys(next)
				if err != nil {
					return reload.Loaded{}, err
				}
				return reload.Loaded{Config: next, Keys: keys}, nil
			}
			notify := func(state string) error { _, err := daemon.SdNotify(false, state); return err }
			r := reload.New(reload.Loaded{Config: cfg, Keys: keys}, load, d, notify, log)
			d.SetReload(r.Reload)
			// Exits when ctx is done.
			go r.Watch(ctx, hup)
			if err := d.Run(ctx); err != nil {
				return err
			}
			log.Info("hc-agent stopping", "reason", context.Cause(ctx).Error())
			return nil
		},
	}
}
