package main

import (
	"context"
	"fmt"

	"github.com/hc-agent/hc-agent/agent"
)

func prepareImageCommand() command {
	return command{
		name:    "prepare-image",
		summary: "remove the agent's state before taking a snapshot image",
		usage: `[--dry-run]

Removes everything in the state directory (state_dir, default
/var/lib/hc-agent): the record of the server it belongs to and the
ownership record of the addresses hc-agent configured. Each removed path is
printed. Run it, ideally with the service stopped, right before taking a
snapshot, so that servers created from the image start from nothing.

Servers booted from an image made without it are safe too: the agent keys
its state by instance ID and discards state written on another server.`,
		run: func(_ context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			dryRun := fs.Bool("dry-run", false, "only list what would be removed")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			cfg, _, err := env.loadConfig()
			if err != nil {
				return err
			}
			paths, err := agent.PrepareImage(cfg.StateDir, *dryRun)
			verb := "removed"
			if *dryRun {
				verb = "would remove"
			}
			for _, p := range paths {
				fmt.Fprintln(env.stdout, verb, p)
			}
			if err != nil {
				return fmt.Errorf("prepare image: %w", err)
			}
			if len(paths) == 0 {
				fmt.Fprintln(env.stdout, "nothing to remove in", cfg.StateDir)
			}
			return nil
		},
	}
}
