package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
)

func statusCommand() command {
	return command{
		name:    "status",
		summary: "show what the running daemon sees and does",
		usage: `[--json] [--addr HOST:PORT]

Reads the status document from the running daemon's control socket in
runtime_dir (root), or else from /status of its listener (metrics.listen of
the configuration, default 127.0.0.1:9183, or --addr), and prints the agent,
its reconcile
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
			var raw []byte
			var view StatusView
			if *addr == "" {
				cfg, _, err := env.loadConfig()
				if err != nil {
					return err
				}
				// The control socket first: it answers also when the
				// listener wants TLS and a password (web_config_file).
				raw, view, err = controlStatus(ctx, control.Path(cfg.RuntimeDir))
				switch {
				case err == nil:
				case !errors.Is(err, control.ErrNotRunning) && !errors.Is(err, os.ErrPermission):
					return err
				case !cfg.Metrics.Enabled():
					return errors.New("status: the daemon's listener is off (metrics.listen: off)")
				default:
					*addr = dialAddr(cfg.Metrics.Listen)
				}
			}
			if raw == nil {
				var err error
				if raw, view, err = FetchStatus(ctx, *addr); err != nil {
					return err
				}
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

// controlStatus reads the status document from the control socket at path.
func controlStatus(ctx context.Context, path string) ([]byte, StatusView, error) {
	var raw json.RawMessage
	if err := control.NewClient(path).Status(ctx, &raw); err != nil {
		return nil, StatusView{}, err
	}
	var v StatusView
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, StatusView{}, fmt.Errorf("decode agent status from %s: %w", path, err)
	}
	return append(raw, '\n'), v, nil
}
