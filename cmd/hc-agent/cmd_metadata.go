package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hc-agent/hc-agent/metadata"
)

func metadataCommand() command {
	return command{
		name:    "metadata",
		summary: "print this server's metadata (YAML, or JSON with --json)",
		usage: `[--json] [flags] [KEY]

Reads the Hetzner Cloud metadata service and prints it as YAML (default) or
JSON. Without KEY it prints the summary document together with
private-networks. KEY is one of hostname, instance-id, public-ipv4,
private-networks, availability-zone, region, or any other key present in the
summary (for example public-keys on real servers).

The endpoint, timeout and attempts come from the metadata section of the
configuration; the flags override them. When the service cannot be reached
after all attempts, metadata exits with status 1 and a one-line reason.`,
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			fs := env.flagSet()
			asJSON := fs.Bool("json", false, "print JSON instead of YAML")
			endpoint := fs.String("endpoint", "", "metadata service `URL` (default: metadata.endpoint of the config)")
			timeout := fs.Duration("timeout", 0, "per-request timeout `D`, e.g. 500ms (default: metadata.timeout of the config)")
			attempts := fs.Int("attempts", 0, "`N` requests per read, the first included (default: metadata.attempts of the config)")
			if err := env.parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() > 1 {
				return usagef("takes at most one KEY, got %d arguments", fs.NArg())
			}
			if *attempts < 0 || *timeout < 0 {
				return usagef("--attempts and --timeout must not be negative")
			}
			cfg, _, err := env.loadConfig()
			if err != nil {
				return err
			}
			md := cfg.Metadata
			if *endpoint != "" {
				md.Endpoint = *endpoint
			}
			if *timeout > 0 {
				md.Timeout = *timeout
			}
			if *attempts > 0 {
				md.Attempts = *attempts
			}
			client := metadata.New(
				metadata.WithEndpoint(md.Endpoint),
				metadata.WithTimeout(md.Timeout),
				metadata.WithAttempts(md.Attempts),
				metadata.WithLogger(env.logger(cfg)),
			)
			v, err := metadataValue(ctx, client, fs.Arg(0))
			if err != nil {
				return err
			}
			return printValue(env, v, *asJSON)
		},
	}
}

// metadataReader is the part of *metadata.Client the command uses.
type metadataReader interface {
	Summary(ctx context.Context) (metadata.Summary, error)
	PrivateNetworks(ctx context.Context) ([]metadata.PrivateNetwork, error)
	Value(ctx context.Context, key string) (any, error)
}

var _ metadataReader = (*metadata.Client)(nil)

// metadataValue returns what "hc-agent metadata KEY" prints.
func metadataValue(ctx context.Context, c metadataReader, key string) (any, error) {
	switch {
	case key == "":
		s, err := c.Summary(ctx)
		if err != nil {
			return nil, err
		}
		m := s.Map()
		if _, ok := m[metadata.KeyPrivateNetworks]; !ok {
			pns, err := c.PrivateNetworks(ctx)
			switch {
			case metadata.IsNotFound(err):
			case err != nil:
				return nil, err
			default:
				m[metadata.KeyPrivateNetworks] = metadata.PrivateNetworksValue(pns)
			}
		}
		return m, nil
	case slices.Contains(metadata.Keys(), key):
		return c.Value(ctx, key)
	default:
		// Any other key must be in the summary: real servers carry more
		// keys (public-keys, network-config, ...) than the reference lists.
		s, err := c.Summary(ctx)
		if err != nil {
			return nil, err
		}
		if v, ok := s.Extra[key]; ok {
			return v, nil
		}
		known := append(metadata.Keys(), extraKeys(s)...)
		return nil, fmt.Errorf("metadata key %q: not in the summary (keys: %s)", key, strings.Join(known, ", "))
	}
}

func extraKeys(s metadata.Summary) []string {
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// printValue prints v as YAML or indented JSON.
func printValue(env *cliEnv, v any, asJSON bool) error {
	var b bytes.Buffer
	if asJSON {
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode metadata as json: %w", err)
		}
	} else {
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode metadata as yaml: %w", err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("encode metadata as yaml: %w", err)
		}
	}
	_, err := env.stdout.Write(b.Bytes())
	return err
}
