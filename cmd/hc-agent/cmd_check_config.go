package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
)

func checkConfigCommand() command {
	return command{
		name:    "check-config",
		summary: "check the configuration and show the effective one (--print)",
		usage: `[--print]

Loads the configuration file (--config, default /etc/hc-agent/config.yaml;
a missing default file means all defaults), resolves the API token from
HCLOUD_TOKEN or api.token_file (HCLOUD_ENDPOINT overrides api.endpoint) and
validates every key without touching the host. The token file and every
group's key_file must be private (no group or other access), not empty and
hold a valid token or gossip key. Prints "config OK: PATH" and
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

// keyFileProblems checks every group's gossip key file as the token file is
// checked, then decodes it with the loader the daemon uses, so that a bad
// key fails here and not first when the group starts.
func keyFileProblems(cfg config.Config) []error {
	var errs []error
	for i, g := range cfg.Groups {
		if g.KeyFile == "" {
			continue
		}
		key := fmt.Sprintf("groups[%d].key_file", i)
		if _, err := config.ReadKeyFile(key, g.KeyFile); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := floatingip.LoadKeyFile(g.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errs
}
