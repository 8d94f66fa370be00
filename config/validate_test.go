package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validGroup is a memberlist group that passes Validate.
func validGroup(name string) Group {
	g := DefaultGroup()
	g.Name = name
	g.FloatingIPs = []string{"ip-" + name}
	g.Peers = []string{"10.0.0.2", "10.0.0.3:7946"}
	g.KeyFile = "/etc/hc-agent/" + name + ".key"
	return g
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		// want lists the exact problems, in order; nil means valid.
		want []string
	}{
		{name: "defaults", modify: func(*Config) {}},
		{name: "memberlist group", modify: func(c *Config) { c.Groups = []Group{validGroup("web")} }},
		{
			name: "keepalived group needs no peers or key",
			modify: func(c *Config) {
				g := DefaultGroup()
				g.Name, g.Mode, g.KeepalivedFIFO, g.FloatingIPSelector = "db", ModeKeepalived, "/run/keepalived.fifo", "role=db"
				c.Groups = []Group{g}
			},
		},
		{
			name: "insecure group needs no key, peer selector replaces peers",
			modify: func(c *Config) {
				g := validGroup("web")
				g.KeyFile, g.Insecure, g.Peers, g.PeerSelector = "", true, nil, "role=web"
				c.Groups = []Group{g}
			},
		},
		{
			name: "health checks with what they need",
			modify: func(c *Config) {
				a, b, d := validGroup("a"), validGroup("b"), validGroup("d")
				a.Health.Type, a.Health.Target = HealthHTTP, "http://127.0.0.1:8080/healthz"
				b.Health.Type, b.Health.Target = HealthTCP, "127.0.0.1:5432"
				d.Health.Type, d.Health.Command = HealthCommand, []string{"/bin/true"}
				c.Groups = []Group{a, b, d}
			},
		},
		{name: "metrics off", modify: func(c *Config) { c.Metrics.Listen = MetricsOff }},
		{name: "metrics on any port", modify: func(c *Config) { c.Metrics.Listen = ":0" }},
		{name: "priority bounds", modify: func(c *Config) {
			a, b := validGroup("a"), validGroup("b")
			a.Priority, b.Priority = 0, 255
			c.Groups = []Group{a, b}
		}},
		{
			name: "top-level problems",
			modify: func(c *Config) {
				c.Log.Level = "verbose"
				c.Log.Format = "xml"
				c.StateDir = "var/lib"
				c.Metadata.Endpoint = "169.254.169.254"
				c.Metadata.Timeout = 0
				c.Metadata.Attempts = 0
				c.API.Endpoint = "ftp://x"
				c.API.PollInterval = -time.Second
				c.PrivateNetworks.MTU = 9000
				c.PrivateNetworks.DefaultRouteMetric = -1
				c.PrivateNetworks.Exclude = []string{"a", " "}
				c.FloatingIPs.IPv6Host = "2001:db8::1"
				c.Metrics.Listen = "localhost"
			},
			want: []string{
				`log.level: must be one of debug, info, warn, error, got "verbose"`,
				`log.format: must be one of text, json, got "xml"`,
				`state_dir: must be an absolute path, got "var/lib"`,
				`metadata.endpoint: must be an http or https URL, got "169.254.169.254"`,
				`metadata.timeout: must be > 0, got 0s`,
				`metadata.attempts: must be >= 1, got 0`,
				`api.endpoint: must be an http or https URL, got "ftp://x"`,
				`api.poll_interval: must be > 0, got -1s`,
				`private_networks.mtu: must be between 576 and 1450, got 9000`,
				`private_networks.default_route_metric: must be between 0 and 4294967295, got -1`,
				`private_networks.exclude[1]: must not be empty`,
				`floating_ips.ipv6_host: must be a non-zero interface ID within a /64 (upper 64 bits zero), got "2001:db8::1"`,
				`metrics.listen: must be host:port, got "localhost"`,
			},
		},
		{name: "smbios_serial_file relative", modify: func(c *Config) { c.SMBIOSSerialFile = "product_serial" },
			want: []string{`smbios_serial_file: must be an absolute path, got "product_serial"`}},
		{name: "smbios_serial_file off", modify: func(c *Config) { c.SMBIOSSerialFile = SMBIOSSerialOff }},
		{name: "ipv6_host not an address", modify: func(c *Config) { c.FloatingIPs.IPv6Host = "1.2.3.4" },
			want: []string{`floating_ips.ipv6_host: must be an IPv6 interface ID such as "::1", got "1.2.3.4"`}},
		{name: "ipv6_host zero", modify: func(c *Config) { c.FloatingIPs.IPv6Host = "::" },
			want: []string{`floating_ips.ipv6_host: must be a non-zero interface ID within a /64 (upper 64 bits zero), got "::"`}},
		{
			name:   "empty group",
			modify: func(c *Config) { c.Groups = []Group{DefaultGroup()} },
			want: []string{
				"groups[0].name: required",
				"groups[0].floating_ips: floating_ips, floating_ip_selector or private_ips is required",
				"groups[0].peers: peers or peer_selector is required in memberlist mode",
				"groups[0].key_file: required in memberlist mode (gossip encryption); set insecure: true to run without",
			},
		},
		{
			name: "zero group (no defaults applied)",
			modify: func(c *Config) {
				g := validGroup("a")
				g.Mode = ""
				g.Health = HealthCheck{}
				g.Port = 0
				g.MaxMovesPerMinute = 0
				c.Groups = []Group{g}
			},
			want: []string{
				"groups[0].port: must be between 1 and 65535, got 0",
				"groups[0].max_moves_per_minute: must be >= 1, got 0",
				`groups[0].mode: must be "memberlist" or "keepalived", got ""`,
				`groups[0].health.type: must be one of none, http, tcp, command, got ""`,
				"groups[0].health.interval: must be > 0, got 0s",
				"groups[0].health.timeout: must be > 0, got 0s",
				"groups[0].health.rise: must be >= 1, got 0",
				"groups[0].health.fall: must be >= 1, got 0",
			},
		},
		{
			name: "duplicate and bad names",
			modify: func(c *Config) {
				c.Groups = []Group{validGroup("web"), validGroup("web"), validGroup("web site"), validGroup(strings.Repeat("a", 64))}
			},
			want: []string{
				`groups[1].name: "web" is already used by groups[0]`,
				`groups[2].name: must be 1 to 63 characters of A-Z a-z 0-9 _ . -, got "web site"`,
				`groups[3].name: must be 1 to 63 characters of A-Z a-z 0-9 _ . -, got "` + strings.Repeat("a", 64) + `"`,
			},
		},
		{
			name: "group value problems",
			modify: func(c *Config) {
				g := validGroup("a")
				g.FloatingIPs = []string{""}
				g.Priority = 256
				g.Bind = "eth1"
				g.Peers = []string{"10.0.0.2:99999", "[::1]:80", "fe80::1", "host name"}
				g.PreemptDelay = -time.Second
				g.KeepalivedFIFO = "relative.fifo"
				c.Groups = []Group{g}
			},
			want: []string{
				"groups[0].floating_ips[0]: must not be empty",
				"groups[0].priority: must be between 0 and 255, got 256",
				`groups[0].bind: must be an IP address, got "eth1"`,
				`groups[0].peers[0]: port must be 1..65535, got "99999"`,
				`groups[0].peers[3]: must be host:port, got "host name"`,
				"groups[0].preempt_delay: must be >= 0, got -1s",
				`groups[0].keepalived_fifo: must be an absolute path, got "relative.fifo"`,
			},
		},
		{
			name: "keepalived mode needs the fifo",
			modify: func(c *Config) {
				g := validGroup("a")
				g.Mode = ModeKeepalived
				c.Groups = []Group{g}
			},
			want: []string{"groups[0].keepalived_fifo: required in keepalived mode"},
		},
		{
			name: "health checks without what they need",
			modify: func(c *Config) {
				a, b, d, e := validGroup("a"), validGroup("b"), validGroup("d"), validGroup("e")
				a.Health.Type = HealthHTTP
				b.Health.Type, b.Health.Target = HealthTCP, "127.0.0.1"
				d.Health.Type, d.Health.Target, d.Health.Command = HealthCommand, "x", []string{""}
				e.Health.Target, e.Health.Command = "x", []string{"y"}
				e.Health.Timeout, e.Health.Rise = 2*time.Second, 0
				c.Groups = []Group{a, b, d, e}
			},
			want: []string{
				`groups[0].health.target: must be an http or https URL, got ""`,
				`groups[1].health.target: must be host:port, got "127.0.0.1"`,
				`groups[2].health.command: required for type "command" (argv list, first element the program)`,
				`groups[2].health.target: not used by type "command"`,
				`groups[3].health.target: not used by type "none"`,
				`groups[3].health.command: not used by type "none"`,
				"groups[3].health.timeout: must not exceed interval (1s), got 2s",
				"groups[3].health.rise: must be >= 1, got 0",
			},
		},
		{
			name: "private VIPs only, and with floating IPs and egress",
			modify: func(c *Config) {
				db, web := validGroup("db"), validGroup("web")
				db.FloatingIPs = nil
				db.PrivateIPs = []PrivateIP{{IP: "10.0.1.100", Via: ViaAlias}, {IP: "10.0.2.50", Via: ViaRoute}}
				web.PrivateIPs = []PrivateIP{{IP: "10.0.1.101", Via: ViaAlias}}
				web.Egress = true
				c.Groups = []Group{db, web}
			},
		},
		{
			name: "egress by floating IP selector",
			modify: func(c *Config) {
				g := validGroup("web")
				g.FloatingIPs, g.FloatingIPSelector, g.Egress = nil, "role=web", true
				c.Groups = []Group{g}
			},
		},
		{
			name: "private VIP problems",
			modify: func(c *Config) {
				a, b := validGroup("a"), validGroup("b")
				a.FloatingIPs = nil
				a.Egress = true
				a.PrivateIPs = []PrivateIP{
					{IP: "10.0.1.100", Via: ViaAlias},
					{},
					{IP: "2001:db8::1", Via: "arp"},
					{IP: "1.2.3.4", Via: ViaRoute},
					{IP: "10.0.1.100", Via: ViaRoute},
				}
				b.PrivateIPs = []PrivateIP{{IP: "10.0.1.100", Via: ViaAlias}, {IP: "10.0.9.9%eth1", Via: ViaAlias}}
				c.Groups = []Group{a, b}
			},
			want: []string{
				"groups[0].private_ips[1].ip: required",
				`groups[0].private_ips[1].via: required ("alias" or "route")`,
				`groups[0].private_ips[2].ip: must be an IPv4 address (private networks have no IPv6), got "2001:db8::1"`,
				`groups[0].private_ips[2].via: must be "alias" or "route", got "arp"`,
				`groups[0].private_ips[3].ip: must be a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), got "1.2.3.4"`,
				"groups[0].private_ips[4].ip: 10.0.1.100 is already used by groups[0].private_ips[0]",
				"groups[0].egress: needs floating_ips or floating_ip_selector: traffic leaves from the group's floating IPs",
				"groups[1].private_ips[0].ip: 10.0.1.100 is already used by groups[0].private_ips[0]",
				`groups[1].private_ips[1].ip: must be an IPv4 address, got "10.0.9.9%eth1"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			err := c.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				require.True(t, errors.As(e, &fe), "%T is a *FieldError", e)
				got = append(got, e.Error())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
