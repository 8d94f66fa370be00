package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
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

The route to the metadata service is checked before metadata is read: with
private_networks.pin_metadata_route it is pinned to the public gateway first
(a dry run lists the pin), and when a route through a private gateway makes
the read fail, the error names that route.

With --dry-run it prints what it would add, replace and remove, and why, and
changes nothing. With an API token it also prints the floating IP addresses
it would add or remove on the public NIC: those the API assigns to this
server, as the daemon's floating IP manager selects them (failover groups
keep the addresses they hold).`,
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
			if err := netconf.RunOnce(ctx, agent.NetconfOptions(cfg), client, h, owned, env.stdout, *dryRun); err != nil || !*dryRun {
				return err
			}
			return planFloatingIPs(ctx, cfg, client, h, env.stdout, log)
		},
	}
}

// planFloatingIPs prints the floating IP address changes the daemon would
// make on this server now: one read of the metadata summary (which server
// this is) and one of the floating IPs, no change.
func planFloatingIPs(ctx context.Context, cfg config.Config, md *metadata.Client, h *netlink.Handle, out io.Writer, log *slog.Logger) error {
	switch {
	case cfg.API.Token == "":
		fmt.Fprintln(out, "no API token: floating IP addresses not planned")
		return nil
	case !cfg.FloatingIPs.IsEnabled():
		fmt.Fprintln(out, "floating_ips disabled: floating IP addresses not planned")
		return nil
	}
	sum, err := md.Summary(ctx)
	if err != nil {
		return fmt.Errorf("read metadata summary: %w", err)
	}
	opts := []cloudapi.Option{cloudapi.WithLogger(log), cloudapi.WithUserAgent(version)}
	if cfg.API.Endpoint != "" {
		opts = append(opts, cloudapi.WithEndpoint(cfg.API.Endpoint))
	}
	api := cloudapi.New(cfg.API.Token.Reveal(), opts...)
	ps, err := agent.ManagerPrefixes(ctx, cfg, sum.InstanceID, api)
	if err != nil {
		return fmt.Errorf("plan floating ip addresses: %w", err)
	}
	fips, err := netconf.NewFloatingIPApplier(h, filepath.Join(cfg.StateDir, statedir.FloatingIPOwnedFile), log)
	if err != nil {
		return err
	}
	w := fips.Wants()
	w[floatingip.ManagerOwner] = ps
	changes, err := fips.Plan(ctx, w)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintln(out, "floating IP addresses: nothing to change")
		return nil
	}
	fmt.Fprint(out, netconf.FormatChanges(changes))
	return nil
}
