package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
)

const secretToken = "tok-very-secret-4711"

const validGroupConfig = `groups:
  - name: web
    floating_ips: [web-ip]
    peers: [10.0.0.2]
    insecure: true
`

func TestCheckConfig(t *testing.T) {
	tokenFile := writeFile(t, "token", secretToken+"\n", 0o600)
	openTokenFile := writeFile(t, "token", secretToken+"\n", 0o644)
	badKeyFile := writeFile(t, "gossip.key", "bm90LWEta2V5LXNlY3JldCE=\n", 0o600) // 17 bytes: no AES key size
	keyedGroup := func(keyFile string) string {
		return "groups:\n  - name: web\n    floating_ips: [web-ip]\n    peers: [10.0.0.2]\n    key_file: " + keyFile + "\n"
	}

	goodKey := writeFile(t, "key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 0o600) // base64 of 32 bytes
	openKey := writeFile(t, "key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 0o640)
	emptyKey := writeFile(t, "key", "\n", 0o600)
	missingKey := filepath.Join(t.TempDir(), "missing.key")
	keyGroup := func(path string) string {
		return "groups:\n  - name: web\n    floating_ips: [web-ip]\n    peers: [10.0.0.2]\n    key_file: " + path + "\n"
	}
	tokenEnv := map[string]string{"HCLOUD_TOKEN": secretToken}

	tests := []struct {
		name       string
		config     string            // written to a file passed with --config
		configPath string            // instead of config
		env        map[string]string // the whole environment
		args       []string          // after check-config
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name:       "empty file is all defaults",
			config:     "",
			wantStdout: []string{"config OK: ", "api token: not set"},
		},
		{
			name:       "token from the environment",
			config:     "log:\n  level: debug\n",
			env:        map[string]string{"HCLOUD_TOKEN": secretToken},
			wantStdout: []string{"config OK: ", "api token: set (from HCLOUD_TOKEN)"},
		},
		{
			name:       "token from a private file",
			config:     "api:\n  token_file: " + tokenFile + "\n" + validGroupConfig,
			wantStdout: []string{"config OK: ", "api token: set (from api.token_file " + tokenFile + ")"},
		},
		{
			name:       "token file readable by others",
			config:     "api:\n  token_file: " + openTokenFile + "\n",
			wantCode:   config.ExitCode,
			wantStderr: []string{"api.token_file " + openTokenFile + ": mode 0644 gives group or others access; run chmod 600 on it", "hc-agent: config ", ": 1 problem"},
		},
		{
			name:       "private key file",
			config:     keyGroup(goodKey),
			env:        tokenEnv,
			wantStdout: []string{"config OK: "},
		},
		{
			name:       "key file readable by the group",
			config:     keyGroup(openKey),
			env:        tokenEnv,
			wantCode:   config.ExitCode,
			wantStderr: []string{"groups[0].key_file " + openKey + ": mode 0640 gives group or others access; run chmod 600 on it", ": 1 problem"},
		},
		{
			name:       "missing key file",
			config:     keyGroup(missingKey),
			env:        tokenEnv,
			wantCode:   config.ExitCode,
			wantStderr: []string{"open groups[0].key_file " + missingKey + ": ", "no such file or directory"},
		},
		{
			name:       "empty key file",
			config:     keyGroup(emptyKey),
			env:        tokenEnv,
			wantCode:   config.ExitCode,
			wantStderr: []string{"groups[0].key_file " + emptyKey + ": empty"},
		},
		{
			name:       "unknown key names path and line",
			config:     "log:\n  level: debug\n  colour: true\n",
			wantCode:   config.ExitCode,
			wantStderr: []string{".yaml:3: log.colour: unknown key\n", ": 1 problem\n"},
		},
		{
			name:       "wrong type and bad duration",
			config:     "metadata:\n  timeout: 2\n  attempts: lots\n",
			wantCode:   config.ExitCode,
			wantStderr: []string{".yaml:2: metadata.timeout: want a duration", ".yaml:3: metadata.attempts: want an integer", ": 2 problems\n"},
		},
		{
			name:       "validation problems, one per line",
			config:     "groups:\n  - floating_ips: [x]\n    insecure: true\n    peers: [10.0.0.2]\n    health:\n      rise: 0\n",
			env:        map[string]string{"HCLOUD_TOKEN": secretToken},
			wantCode:   config.ExitCode,
			wantStderr: []string{".yaml: groups[0].name: required\n", ".yaml: groups[0].health.rise: must be >= 1, got 0\n", ": 2 problems\n"},
		},
		{
			name:       "groups need a token",
			config:     validGroupConfig,
			wantCode:   config.ExitCode,
			wantStderr: []string{"api token: failover groups need one; set HCLOUD_TOKEN or api.token_file"},
		},
		{
			name:       "gossip key file that does not load",
			config:     keyedGroup(badKeyFile),
			env:        map[string]string{"HCLOUD_TOKEN": secretToken},
			wantCode:   config.ExitCode,
			wantStderr: []string{"groups[0].key_file: read gossip key file " + badKeyFile + ": line 1: not the base64 of a 16, 24 or 32 byte key\n"},
		},
		{
			name:       "metrics web config that does not load",
			config:     "metrics:\n  web_config_file: " + filepath.Join(t.TempDir(), "web.yml") + "\n",
			wantCode:   config.ExitCode,
			wantStderr: []string{"metrics.web_config_file: load metrics web config ", "web.yml"},
		},
		{
			name:       "HCLOUD_ENDPOINT is validated too",
			config:     "",
			env:        map[string]string{"HCLOUD_ENDPOINT": "not a url"},
			wantCode:   config.ExitCode,
			wantStderr: []string{`api.endpoint: must be an http or https URL, got "not a url"`},
		},
		{
			name:       "explicit missing file",
			configPath: filepath.Join(t.TempDir(), "nope.yaml"),
			wantCode:   config.ExitCode,
			wantStderr: []string{"hc-agent: open config ", "nope.yaml: no such file or directory\n"},
		},
		{
			name:       "print",
			config:     "metadata:\n  attempts: 3\n",
			env:        map[string]string{"HCLOUD_TOKEN": secretToken},
			args:       []string{"--print"},
			wantStdout: []string{"# config OK: ", "# api token: set (from HCLOUD_TOKEN)", "  attempts: 3\n", "  # token: [redacted]\n", "groups: []\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.configPath
			if path == "" {
				path = writeFile(t, "config.yaml", tc.config, 0o644)
			}
			r := runCLI(t, tc.env, append([]string{"check-config", "--config", path}, tc.args...)...)
			assert.Equal(t, tc.wantCode, r.code, "stderr: %s", r.stderr)
			for _, w := range tc.wantStdout {
				assert.Contains(t, r.stdout, w)
			}
			for _, w := range tc.wantStderr {
				assert.Contains(t, r.stderr, w)
			}
			if tc.wantCode == 0 {
				assert.Empty(t, r.stderr)
				assert.Contains(t, r.stdout, "config OK: "+path)
			} else {
				assert.NotContains(t, r.stdout, "config OK")
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				assert.True(t, strings.HasPrefix(lines[len(lines)-1], "hc-agent: "), "last line is the one-line reason: %q", r.stderr)
			}
			assert.NotContains(t, r.stdout+r.stderr, secretToken)
		})
	}
}

// TestCheckConfigPrintIsAConfig checks that --print output, comments
// included, is a configuration that parses back to the effective one.
func TestCheckConfigPrintIsAConfig(t *testing.T) {
	path := writeFile(t, "config.yaml", "log:\n  format: json\n"+validGroupConfig, 0o644)
	r := runCLI(t, map[string]string{"HCLOUD_TOKEN": secretToken}, "--config", path, "check-config", "--print")
	require.Equal(t, 0, r.code, r.stderr)
	got, err := config.Parse([]byte(r.stdout))
	require.NoError(t, err, r.stdout)
	want, err := config.Load(path)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}
