package main

import (
	"context"
	"errors"
	"net"

	"github.com/hc-agent/hc-agent/config"
)

func statusCommand() command {
	return command{
		name:    "status",
		summary: "show what the running daemon sees and does",
		usage: `[--json] [--addr HOST:PORT]

Reads /status from the running daemon's listener (metrics.listen of the
configuration, default 127.0.0.1:9183) and prints the agent, its reconcile
loops and, per failover group, the members and their health, who holds each
floating IP by the API and by the local view, and the last move. --json
prints the document as the daemon serves it. Exits 1 with the reason when
the daemon does not answer.`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			asJSON := fs.Bool("json", false, "print the status document as JSON")
			addr := fs.String("addr", "", "daemon listener `HOST:PORT` (default: metrics.listen of the config)")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			if *addr == "" {
				cfg, _, err := env.loadConfig()
				if err != nil {
					return err
				}
				if !cfg.Metrics.Enabled() {
					return errors.New("status: the daemon's listener is off (metrics.listen: off)")
				}
				*addr = dialAddr(cfg.Metrics.Listen)
			}
			raw, view, err := FetchStatus(ctx, *addr)
			if err != nil {
				return err
			}
			if *asJSON {
				_, err := env.stdout.Write(raw)
				return err
			}
			return WriteStatus(env.stdout, view)
		},
	}
}

// dialAddr turns a listen address into one to connect to: an unspecified
// host (":9183", "0.0.0.0:9183", "[::]:9183") means this machine.
func dialAddr(listen string) string {
	if listen == "" {
		listen = config.DefaultMetricsListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
