package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print the version, commit and Go version",
		usage: `

Prints "hc-agent VERSION (commit COMMIT, GOVERSION)". VERSION and COMMIT are
set at build time by the Makefile; when the commit is not set, the VCS
revision that the Go toolchain recorded in the binary is used.`,
		run: func(_ context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			fmt.Fprintln(env.stdout, versionString(version, commit, debug.ReadBuildInfo))
			return nil
		},
	}
}

// versionString renders the version line. readBuildInfo is
// debug.ReadBuildInfo outside tests.
func versionString(version, commit string, readBuildInfo func() (*debug.BuildInfo, bool)) string {
	if commit == "" || commit == "unknown" {
		commit = "unknown"
		if bi, ok := readBuildInfo(); ok {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				if len(rev) > 12 {
					rev = rev[:12]
				}
				if modified == "true" {
					rev += "-dirty"
				}
				commit = rev
			}
		}
	}
	return fmt.Sprintf("hc-agent %s (commit %s, %s)", version, commit, runtime.Version())
}
