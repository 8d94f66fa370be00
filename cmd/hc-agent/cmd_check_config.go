package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/hc-agent/hc-agent/config"
)

func checkConfigCommand() command {
	return command{
		name:    "check-config",
		summary: "check the configuration and show the effective one (--print)",
		usage: `[--print]

Loads the configuration file (--config, default /etc/hc-agent/config.yaml;
a missing default file means all defaults), resolves the API token from
HCLOUD_TOKEN or api.token_file (HCLOUD_ENDPOINT overrides api.endpoint) and
validates every key without touching the host. Prints "config OK: PATH" and
whether an API token is set (never the token itself), or every problem as
"PATH:LINE: problem" / "PATH: key: problem" and exits with status 78
(EX_CONFIG). The gossip key files and metrics.web_config_file are loaded
too.`,
		run: func(_ context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			print := fs.Bool("print", false, "print the effective configuration as YAML (token redacted); status lines become YAML comments")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return usagef("takes no arguments, got %q", fs.Arg(0))
			}
			return checkConfigRun(env, *print)
		},
	}
}

func checkConfigRun(env *cliEnv, print bool) error {
	cfg, path, err := env.loadCheckedConfig()
	if err != nil {
		return err
	}
	status := []string{"config OK: " + path}
	if !fileExists(path) {
		status[0] += " (no file: all defaults)"
	}
	status = append(status, "api token: "+tokenStatus(cfg, env.getenv))

	if !print {
		for _, s := range status {
			fmt.Fprintln(env.stdout, s)
		}
		return nil
	}
	out, err := cfg.YAML()
	if err != nil {
		return err
	}
	for _, s := range status {
		fmt.Fprintln(env.stdout, "# "+s)
	}
	_, err = io.Copy(env.stdout, strings.NewReader(string(out)))
	return err
}

// tokenStatus says where the token comes from, never what it is.
func tokenStatus(c config.Config, getenv func(string) string) string {
	switch {
	case c.API.Token == "":
		return fmt.Sprintf("not set (floating IPs and failover groups need %s or api.token_file)", config.EnvToken)
	case strings.TrimSpace(getenv(config.EnvToken)) != "":
		return "set (from " + config.EnvToken + ")"
	default:
		return "set (from api.token_file " + c.API.TokenFile + ")"
	}
}
