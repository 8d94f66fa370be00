package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/netconf"
	"github.com/hc-agent/hc-agent/statedir"
)

func applyCommand() command {
	return command{
		name:    "apply",
		summary: "configure the private networks once; --dry-run prints the plan",
		usage: `[--dry-run]

Reads the private networks from the metadata service and configures them once,
as one reconcile of the daemon does: MTU, link up, ip/32 and alias IPs, a
route to the gateway and to the whole network. It prints every change with
its reason and exits with status 1 when metadata cannot be read or a change
failed. A metadata error changes nothing. Only what hc-agent added is ever
removed (routes with protocol 71, addresses in the ownership record under
state_dir, shared with the daemon).

With --dry-run it prints what it would add, replace and remove, and why, and
changes nothing.`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			cfg, _, err := env.loadCheckedConfig()
			if err != nil {
				return err
			}
			log := env.logger(cfg)
			client := metadata.New(
				metadata.WithEndpoint(cfg.Metadata.Endpoint),
				metadata.WithTimeout(cfg.Metadata.Timeout),
				metadata.WithAttempts(cfg.Metadata.Attempts),
				metadata.WithLogger(log),
			)
			h, err := netlink.NewHandle()
			if err != nil {
				return fmt.Errorf("open netlink handle: %w", err)
			}
			defer h.Close()
			if !*dryRun {
				// apply writes the ownership record: the state directory
				// must be this server's first, as for the daemon, or the
				// daemon discards what apply recorded (issue 13 item 2).
				sum, err := client.Summary(ctx)
				if err != nil {
					return fmt.Errorf("read metadata summary: %w", err)
				}
				st := statedir.State{InstanceID: sum.InstanceID, CreatedAt: time.Now().UTC(), Version: version}
				if err := statedir.Claim(cfg.StateDir, st, log); err != nil {
					return fmt.Errorf("claim state directory: %w", err)
				}
			}
			owned := filepath.Join(cfg.StateDir, netconf.OwnedFileName)
			return netconf.RunOnce(ctx, agent.NetconfOptions(cfg), client, h, owned, env.stdout, *dryRun)
		},
	}
}
