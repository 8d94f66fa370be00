// Package config defines hc-agent's configuration file: one struct with
// documented defaults, strict YAML decoding and a Validate that does not touch
// the host.
//
// This file is the schema. Every key is optional; Default returns the values
// used for keys that are absent.
package config

import "time"

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/hc-agent/config.yaml"

// Config is the whole configuration file.
type Config struct {
	Log             Log             `yaml:"log"`
	StateDir        string          `yaml:"state_dir"`   // default /var/lib/hc-agent
	RuntimeDir      string          `yaml:"runtime_dir"` // default /run/hc-agent
	Metadata        Metadata        `yaml:"metadata"`
	API             API             `yaml:"api"`
	PrivateNetworks PrivateNetworks `yaml:"private_networks"`
	FloatingIPs     FloatingIPs     `yaml:"floating_ips"`
	Groups          []Group         `yaml:"groups"`
	Metrics         Metrics         `yaml:"metrics"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Metadata configures the metadata client.
type Metadata struct {
	Endpoint     string        `yaml:"endpoint"`      // default metadata.DefaultEndpoint
	Timeout      time.Duration `yaml:"timeout"`       // per request, default 2s
	Attempts     int           `yaml:"attempts"`      // per call incl. the first, default 5
	PollInterval time.Duration `yaml:"poll_interval"` // periodic refresh, default 30s (jittered)
}

// API configures the Hetzner Cloud API client. The token comes from the
// HCLOUD_TOKEN environment variable or from TokenFile; HCLOUD_ENDPOINT
// overrides Endpoint.
type API struct {
	Endpoint     string        `yaml:"endpoint"`      // default https://api.hetzner.cloud/v1
	TokenFile    string        `yaml:"token_file"`    // must not be group- or world-readable
	PollInterval time.Duration `yaml:"poll_interval"` // floating IP assignment refresh, default 20m (jittered)
	Token        Secret        `yaml:"-"`             // resolved token, never printed
}

// PrivateNetworks configures netconf.
type PrivateNetworks struct {
	Enabled            *bool    `yaml:"enabled"`              // default true
	MTU                int      `yaml:"mtu"`                  // default 1450
	DefaultRoute       bool     `yaml:"default_route"`        // default false
	DefaultRouteMetric int      `yaml:"default_route_metric"` // default 1024
	Exclude            []string `yaml:"exclude"`              // network IDs or names
	PinMetadataRoute   bool     `yaml:"pin_metadata_route"`   // default false: only report the black hole
}

// FloatingIPs configures host configuration of floating IPs assigned here.
type FloatingIPs struct {
	Enabled       *bool  `yaml:"enabled"`        // default true
	LabelSelector string `yaml:"label_selector"` // only floating IPs matching it; default all
	IPv6Host      string `yaml:"ipv6_host"`      // interface ID within the /64, default "::1"
}

// Group is one failover group.
type Group struct {
	Name               string        `yaml:"name"`
	FloatingIPs        []string      `yaml:"floating_ips"`         // names or IDs
	FloatingIPSelector string        `yaml:"floating_ip_selector"` // label selector
	Priority           int           `yaml:"priority"`             // higher wins, default 100
	Peers              []string      `yaml:"peers"`                // private addresses (host or host:port)
	PeerSelector       string        `yaml:"peer_selector"`        // discover peers by server label selector
	Bind               string        `yaml:"bind"`                 // private address to bind gossip to; default: first private IP
	Port               int           `yaml:"port"`                 // gossip port, default 7946
	KeyFile            string        `yaml:"key_file"`             // gossip encryption key (16/24/32 bytes, raw or base64)
	Insecure           bool          `yaml:"insecure"`             // allow a group without a key
	Mode               string        `yaml:"mode"`                 // memberlist (default) or keepalived
	KeepalivedFIFO     string        `yaml:"keepalived_fifo"`      // notify_fifo path in keepalived mode
	KeepalivedInstance string        `yaml:"keepalived_instance"`  // VRRP instance name to follow
	Preempt            bool          `yaml:"preempt"`              // default false
	PreemptDelay       time.Duration `yaml:"preempt_delay"`        // default 30s
	MaxMovesPerMinute  int           `yaml:"max_moves_per_minute"` // default 3
	Health             HealthCheck   `yaml:"health"`
}

// HealthCheck decides whether this member is a candidate.
type HealthCheck struct {
	Type     string        `yaml:"type"`     // none (default), http, tcp, command
	Target   string        `yaml:"target"`   // URL for http, host:port for tcp
	Command  []string      `yaml:"command"`  // argv for command
	Interval time.Duration `yaml:"interval"` // default 1s
	Timeout  time.Duration `yaml:"timeout"`  // default 500ms
	Rise     int           `yaml:"rise"`     // default 2
	Fall     int           `yaml:"fall"`     // default 2
}

// Metrics configures the metrics, /healthz and /status listener.
type Metrics struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9183; "" keeps the default, "off" disables
}

// Secret is a string that never prints: it implements fmt.Stringer,
// slog.LogValuer and yaml/json marshalling as "[redacted]".
type Secret string
