package main

import (
	"context"
	"fmt"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
)

// controlClient returns a client for the running daemon's control socket
// in runtime_dir. The configuration only says where that is: one that
// does not load (the operator may be reloading to fix it) falls back to
// the default runtime_dir, and the daemon judges the file itself.
func (env *cliEnv) controlClient() *control.Client {
	dir := config.DefaultRuntimeDir
	if cfg, _, err := env.loadConfig(); err == nil && cfg.RuntimeDir != "" {
		dir = cfg.RuntimeDir
	}
	return control.NewClient(control.Path(dir))
}

func reloadCommand() command {
	return command{
		name:    "reload",
		summary: "make the running daemon re-read its configuration",
		usage: `

Asks the running daemon, over its control socket in runtime_dir, to re-read
the configuration, the token file and the key files and to apply what
changed without dropping an IP this server holds. A configuration the daemon
refuses leaves the running one in place: reload prints the reason and exits
with status 1. The unit's ExecReload= runs this, so that systemctl reload
fails the same way.`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			if err := env.controlClient().Reload(ctx); err != nil {
				return err
			}
			fmt.Fprintln(env.stdout, "reloaded")
			return nil
		},
	}
}

func handoverCommand() command {
	return command{
		name:    "handover",
		summary: "hand a group's IPs to a healthy peer and stay out (drain)",
		usage: `[--resume] [GROUP...]

Asks the running daemon, over its control socket in runtime_dir, to hand the
IPs of each GROUP (every group when none is named) to a healthy peer and to
keep this member out of candidacy, as hc-agent status shows, until
"hc-agent handover --resume" or a restart. --resume makes it a candidate
again.`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			resume := fs.Bool("resume", false, "take part in the groups again")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			c := env.controlClient()
			groups := fs.Args()
			if *resume {
				if err := c.Resume(ctx, groups); err != nil {
					return err
				}
				fmt.Fprintln(env.stdout, "resumed")
				return nil
			}
			if err := c.Handover(ctx, groups); err != nil {
				return err
			}
			fmt.Fprintln(env.stdout, "handed over; run 'hc-agent handover --resume' to take part again")
			return nil
		},
	}
}
