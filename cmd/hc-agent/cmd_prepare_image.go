package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hc-agent/hc-agent/statedir"
)

func prepareImageCommand() command {
	return command{
		name:    "prepare-image",
		summary: "remove the agent's state before taking a snapshot image",
		usage: `[--dry-run]

Removes hc-agent's files from the state directory (state_dir, default
/var/lib/hc-agent): the record of the server the state belongs to
(state.json), the ownership records of the private-network addresses
(netconf-owned.json) and of the floating IPs (floatingip-owned.json) that
hc-agent configured, and temporary files of interrupted writes. Each
removed path is printed. The directory itself and anything else in it
stay.

Stop the service first, right before taking the snapshot:

  systemctl stop hc-agent && hc-agent prepare-image

A running agent may write its state again; prepare-image warns when the
runtime directory (runtime_dir, default /run/hc-agent, which systemd keeps
only while the service runs) exists.

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
			cfg, path, err := env.loadConfig()
			if err != nil {
				return err
			}
			// Everything inside state_dir is removed: refuse a value that
			// Validate would reject, or the root, rather than empty the
			// working directory or the whole file system.
			dir := cfg.StateDir
			if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
				return fmt.Errorf("prepare image: config %s: state_dir %q: must be an absolute path other than /", path, dir)
			}
			if runningHint(cfg.RuntimeDir) {
				fmt.Fprintf(env.stderr, "hc-agent prepare-image: warning: %s exists, the hc-agent service seems to be running and may write its state again; stop it first (systemctl stop hc-agent)\n", cfg.RuntimeDir)
			}
			paths, err := statedir.PrepareImage(dir, *dryRun)
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
				fmt.Fprintln(env.stdout, "nothing to remove in", dir)
			}
			return nil
		},
	}
}

// runningHint reports whether the runtime directory exists: systemd
// creates it when the service starts (RuntimeDirectory=) and removes it
// when the service stops. It is a hint for a warning, not a lock.
func runningHint(runtimeDir string) bool {
	if runtimeDir == "" {
		return false
	}
	fi, err := os.Stat(runtimeDir)
	return err == nil && fi.IsDir()
}
