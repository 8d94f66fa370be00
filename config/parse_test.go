package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseCases are shared by TestParse and the seed corpus of FuzzParse.
var parseCases = []struct {
	name string
	in   string
	want func(c *Config) // applied to Default(); nil with wantErr
	// wantErr lists substrings that must all appear in the error.
	wantErr []string
}{
	{name: "empty", in: "", want: func(*Config) {}},
	{name: "only comments", in: "# nothing\n", want: func(*Config) {}},
	{name: "empty mapping", in: "{}\n", want: func(*Config) {}},
	{name: "null sections keep defaults", in: "log:\nmetadata: ~\n", want: func(*Config) {}},
	{
		name: "top-level values",
		in: "log:\n  level: debug\n  format: json\nstate_dir: /srv/hc\nmetadata:\n  timeout: 500ms\n  attempts: 1\n" +
			"api:\n  endpoint: http://127.0.0.1:8080/v1\n  token_file: /etc/hc-agent/token\n  poll_interval: 1h30m\n" +
			"private_networks:\n  enabled: false\n  mtu: 1400\n  exclude: [net-a, '42']\n" +
			"floating_ips: {enabled: false, ipv6_host: '::2'}\nmetrics: {listen: 'off'}\n",
		want: func(c *Config) {
			c.Log = Log{Level: "debug", Format: "json"}
			c.StateDir = "/srv/hc"
			c.Metadata.Timeout = 500 * time.Millisecond
			c.Metadata.Attempts = 1
			c.API.Endpoint = "http://127.0.0.1:8080/v1"
			c.API.TokenFile = "/etc/hc-agent/token"
			c.API.PollInterval = 90 * time.Minute
			c.PrivateNetworks.Enabled = ptr(false)
			c.PrivateNetworks.MTU = 1400
			c.PrivateNetworks.Exclude = []string{"net-a", "42"}
			c.FloatingIPs.Enabled = ptr(false)
			c.FloatingIPs.IPv6Host = "::2"
			c.Metrics.Listen = "off"
		},
	},
	{
		name: "explicit zero of a top-level key stays zero",
		in:   "metadata:\n  attempts: 0\n",
		want: func(c *Config) { c.Metadata.Attempts = 0 },
	},
	{
		name: "empty string means the default",
		in:   "metrics:\n  listen: ''\nlog:\n  level: ''\n",
		want: func(*Config) {},
	},
	{
		name: "null pointer means the default",
		in:   "private_networks:\n  enabled: null\n",
		want: func(*Config) {},
	},
	{
		name: "empty lists are nil",
		in:   "groups: []\nprivate_networks: {exclude: []}\n",
		want: func(*Config) {},
	},
	{
		name: "group gets defaults",
		in:   "groups:\n  - name: web\n    floating_ips: [web-ip]\n    peers: [10.0.0.2]\n    key_file: /k\n",
		want: func(c *Config) {
			g := DefaultGroup()
			g.Name, g.FloatingIPs, g.Peers, g.KeyFile = "web", []string{"web-ip"}, []string{"10.0.0.2"}, "/k"
			c.Groups = []Group{g}
		},
	},
	{
		name: "explicit zero in a group stays zero, null means default",
		in:   "groups:\n- name: a\n  priority: 0\n  preempt_delay: 0s\n  port: ~\n  health: {rise: ~, fall: 1, type: tcp}\n",
		want: func(c *Config) {
			g := DefaultGroup()
			g.Name, g.Priority, g.PreemptDelay = "a", 0, 0
			g.Health.Type, g.Health.Fall = "tcp", 1
			c.Groups = []Group{g}
		},
	},
	{
		name: "private VIPs and egress, flow and block style",
		in: "groups:\n- name: db\n  private_ips: [{ip: 10.0.1.100, via: alias}, {ip: 10.0.2.50, via: route}]\n" +
			"- name: web\n  floating_ips: [web-ip]\n  egress: true\n  private_ips:\n    - ip: 192.168.0.7\n      via: alias\n",
		want: func(c *Config) {
			db, web := DefaultGroup(), DefaultGroup()
			db.Name = "db"
			db.PrivateIPs = []PrivateIP{{IP: "10.0.1.100", Via: ViaAlias}, {IP: "10.0.2.50", Via: ViaRoute}}
			web.Name, web.FloatingIPs, web.Egress = "web", []string{"web-ip"}, true
			web.PrivateIPs = []PrivateIP{{IP: "192.168.0.7", Via: ViaAlias}}
			c.Groups = []Group{db, web}
		},
	},
	{
		name: "empty private_ips is nil",
		in:   "groups:\n- name: a\n  private_ips: []\n",
		want: func(c *Config) {
			g := DefaultGroup()
			g.Name = "a"
			c.Groups = []Group{g}
		},
	},
	{
		name:    "private VIP kind is alias or route",
		in:      "groups:\n- name: a\n  private_ips:\n  - ip: 10.0.1.100\n    via: arp\n",
		wantErr: []string{`line 5: groups[0].private_ips[0].via: must be "alias" or "route", got "arp"`},
	},
	{
		name: "private VIP must be a private IPv4 address, each problem on its line",
		in: "groups:\n- name: a\n  private_ips:\n  - {ip: 'fd00::1', via: alias}\n  - {ip: 10.0.1, via: route}\n" +
			"  - {ip: 8.8.8.8, via: alias}\n  - {ip: 10.0.1.1, via: ALIAS}\n",
		wantErr: []string{
			`line 4: groups[0].private_ips[0].ip: must be an IPv4 address (private networks have no IPv6), got "fd00::1"`,
			`line 5: groups[0].private_ips[1].ip: must be an IPv4 address, got "10.0.1"`,
			`line 6: groups[0].private_ips[2].ip: must be a private address`,
			`line 7: groups[0].private_ips[3].via: must be "alias" or "route", got "ALIAS"`,
		},
	},
	{
		name:    "private VIP entry is a mapping",
		in:      "groups:\n- name: a\n  private_ips: [10.0.1.100]\n",
		wantErr: []string{`line 3: groups[0].private_ips: want a mapping such as {ip: 10.0.1.100, via: alias}, got string "10.0.1.100"`},
	},
	{
		name:    "private VIP kind is a string",
		in:      "groups:\n- name: a\n  private_ips:\n  - ip: 10.0.1.100\n    via: [alias]\n",
		wantErr: []string{`line 5: groups[0].private_ips[0].via: want "alias" or "route", got list`},
	},
	{
		name:    "unknown key in a private VIP",
		in:      "groups:\n- name: a\n  private_ips:\n  - ip: 10.0.1.100\n    network: 42\n",
		wantErr: []string{"line 5: groups[0].private_ips[0].network: unknown key"},
	},
	{
		name:    "egress is a boolean",
		in:      "groups:\n- name: a\n  egress: yes please\n",
		wantErr: []string{`line 3: groups[0].egress: want true or false, got string "yes please"`},
	},
	{
		name:    "anchor at top level is an unknown key",
		in:      "base: &b\n",
		wantErr: []string{"line 1: base: unknown key"},
	},
	{
		name: "anchors and merge keys inside groups",
		in:   "groups:\n- &g {name: a, priority: 7, health: {rise: 5}}\n- <<: *g\n  name: b\n",
		want: func(c *Config) {
			a, b := DefaultGroup(), DefaultGroup()
			a.Name, a.Priority, a.Health.Rise = "a", 7, 5
			b.Name, b.Priority, b.Health.Rise = "b", 7, 5
			c.Groups = []Group{a, b}
		},
	},
	{
		name:    "unknown top-level key",
		in:      "log:\n  level: info\nfoo: bar\n",
		wantErr: []string{"line 3: foo: unknown key"},
	},
	{
		name:    "unknown nested key names its path",
		in:      "groups:\n  - name: a\n    health:\n      intervall: 1s\n",
		wantErr: []string{"line 4: groups[0].health.intervall: unknown key"},
	},
	{
		name:    "token is not a config key",
		in:      "api:\n  token: abc\n",
		wantErr: []string{"line 2: api.token: unknown key"},
	},
	{
		name:    "wrong type",
		in:      "metadata:\n  attempts: many\n",
		wantErr: []string{"line 2: metadata.attempts: want an integer, got string \"many\""},
	},
	{
		name:    "mapping where a string belongs",
		in:      "state_dir: {a: b}\n",
		wantErr: []string{"line 1: state_dir: want a string, got mapping"},
	},
	{
		name:    "float into an integer",
		in:      "groups:\n- name: a\n  priority: 1.5\n",
		wantErr: []string{"line 3: groups[0].priority: want an integer, got number \"1.5\""},
	},
	{
		name:    "bad duration",
		in:      "metadata:\n  timeout: 2 seconds\n",
		wantErr: []string{"line 2: metadata.timeout: want a duration", `got string "2 seconds"`},
	},
	{
		name:    "plain number is not a duration",
		in:      "metadata:\n  timeout: 2\n",
		wantErr: []string{"line 2: metadata.timeout: want a duration"},
	},
	{
		name:    "several problems are all reported",
		in:      "log:\n  levle: x\nmetadata:\n  timeout: x\n",
		wantErr: []string{"line 2: log.levle: unknown key", "line 4: metadata.timeout"},
	},
	{
		name:    "syntax error",
		in:      "log:\n  level: [debug\n",
		wantErr: []string{"line "},
	},
	{
		name:    "tabs",
		in:      "log:\n\tlevel: debug\n",
		wantErr: []string{"line 2"},
	},
	{
		name:    "duplicate key",
		in:      "log:\n  level: debug\n  level: info\n",
		wantErr: []string{"line 3", "already defined"},
	},
	{
		name:    "two documents",
		in:      "log: {}\n---\nlog: {}\n",
		wantErr: []string{"line 2: only one YAML document is allowed"},
	},
	{
		name:    "top level is a list",
		in:      "- a\n",
		wantErr: []string{"line 1", "want a mapping"},
	},
}

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				var pe *ParseError
				assert.True(t, errors.As(err, &pe), "error is a *ParseError: %T", err)
				return
			}
			require.NoError(t, err)
			want := Default()
			tc.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	require.NoError(t, Default().Validate())
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("log:\n  level: debug\n"), 0o644))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("log:\n  lvl: debug\n"), 0o644))
	missing := filepath.Join(dir, "missing.yaml")

	tests := []struct {
		name     string
		path     string
		optional bool
		wantErr  string
		want     func(*Config)
	}{
		{name: "file", path: good, want: func(c *Config) { c.Log.Level = "debug" }},
		{name: "missing optional file is defaults", path: missing, optional: true, want: func(*Config) {}},
		{name: "missing explicit file is an error", path: missing, wantErr: "open config " + missing},
		{name: "bad file names path and line", path: bad, wantErr: "parse config " + bad + ": line 2: log.lvl: unknown key"},
		{name: "directory", path: dir, wantErr: "read config " + dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(tc.path, tc.optional)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := Default()
			tc.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(p, []byte("# "+strings.Repeat("x", maxFileSize)+"\n"), 0o644))
	_, err := load(p, false)
	require.ErrorContains(t, err, "larger than")
}

// TestYAMLRoundTrip checks that the rendering used by check-config --print
// parses back to the same configuration, for every accepted table case.
func TestYAMLRoundTrip(t *testing.T) {
	for _, tc := range parseCases {
		if tc.wantErr != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			require.NoError(t, err)
			out, err := c.YAML()
			require.NoError(t, err)
			again, err := Parse(out)
			require.NoError(t, err, "rendered:\n%s", out)
			assert.Equal(t, c, again)
		})
	}
}

func TestYAMLRedactsToken(t *testing.T) {
	c := Default()
	c.API.Token = "hunter2-token"
	out, err := c.YAML()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "hunter2")
	assert.Contains(t, string(out), "# token: [redacted]")
	again, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, Secret(""), again.API.Token, "the token never comes back from a rendering")

	c.API.Token = ""
	out, err = c.YAML()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "token:")
}
