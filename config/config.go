// Package config defines hc-agent's configuration file: one struct with
// documented defaults, strict YAML decoding and a Validate that does not touch
// the host.
//
// This file is the schema. Every key is optional; Default returns the values
// used for keys that are absent. The commented example packaging/config.yaml
// lists every key with its default, and a test keeps the two in step.
//
// The usual sequence is Load (or Parse), ResolveToken, Validate.
package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/hc-agent/hc-agent/metadata"
)

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/hc-agent/config.yaml"

// Defaults of the configuration keys. Default and DefaultGroup use them; the
// comments on the struct fields below name them too.
const (
	DefaultLogLevel   = "info"
	DefaultLogFormat  = "text"
	DefaultStateDir   = "/var/lib/hc-agent"
	DefaultRuntimeDir = "/run/hc-agent"
	// DefaultSMBIOSSerialFile is where Linux shows the SMBIOS system serial,
	// which is the instance ID on Hetzner Cloud (clone detection).
	DefaultSMBIOSSerialFile       = "/sys/class/dmi/id/product_serial"
	SMBIOSSerialOff               = "off" // SMBIOSSerialFile value that turns the check off
	DefaultMetadataTimeout        = 2 * time.Second
	DefaultMetadataAttempts       = 5
	DefaultMetadataPollInterval   = 30 * time.Second
	DefaultAPIEndpoint            = hcloud.Endpoint // https://api.hetzner.cloud/v1
	DefaultAPIPollInterval        = 20 * time.Minute
	DefaultAPIRetryMin            = 5 * time.Second // first retry of a failed floating IP read; no file key
	DefaultMTU                    = 1450
	DefaultDefaultRouteMetric     = 1024
	DefaultIPv6Host               = "::1"
	DefaultMetricsListen          = "127.0.0.1:9183"
	DefaultGroupMode              = ModeMemberlist
	DefaultGroupPriority          = 100
	DefaultGroupPort              = 7946
	DefaultGroupPreemptDelay      = 30 * time.Second
	DefaultGroupMaxMovesPerMinute = 3
	DefaultHealthType             = HealthNone
	DefaultHealthInterval         = time.Second
	DefaultHealthTimeout          = 500 * time.Millisecond
	DefaultHealthRise             = 2
	DefaultHealthFall             = 2
	MetricsOff                    = "off" // Metrics.Listen value that disables the listener
	// Failover timings without a key in the file; the daemon's wiring
	// passes them to every group.
	DefaultGroupBackoff         = 10 * time.Second // wait after losing the addresses or a failed move
	DefaultGroupActionTimeout   = 30 * time.Second // bound of one move action
	DefaultGroupRefreshInterval = 5 * time.Minute  // re-read of who holds (jittered)
	DefaultGroupSecondPathTTL   = 10 * time.Second // reuse of a second-path answer (groups of two)
	DefaultGroupStartupDelay    = 3 * time.Second  // a starting member waits for news before taking
	DefaultGroupHandoverTimeout = 10 * time.Second // bound of the hand-over on shutdown
	MaxGroupPriority            = 255
	MinMTU                      = 576
	MaxMTU                      = 1450 // the MTU of Hetzner private networks
	maxGroupNameLen             = 63
)

// Group modes.
const (
	// ModeMemberlist decides the holder with hashicorp/memberlist gossip.
	ModeMemberlist = "memberlist"
	// ModeKeepalived follows keepalived's notify_fifo; hc-agent only does
	// the API work.
	ModeKeepalived = "keepalived"
)

// Via is how a private VIP (groups[].private_ips[].via) follows the holder.
// The set is closed: ViaAlias or ViaRoute.
type Via string

// Private VIP kinds.
const (
	// ViaAlias makes the VIP an alias IP of the holder's attachment to the
	// network (change_alias_ips). The VIP lies inside the attached subnet.
	ViaAlias Via = "alias"
	// ViaRoute makes the network route VIP/32 to the holder's private IP
	// (add_route/delete_route). The VIP lies inside the network's range but
	// outside every subnet.
	ViaRoute Via = "route"
)

// Health check types.
const (
	HealthNone    = "none"
	HealthHTTP    = "http"
	HealthTCP     = "tcp"
	HealthCommand = "command"
)

// Config is the whole configuration file.
type Config struct {
	Log        Log    `yaml:"log"`
	StateDir   string `yaml:"state_dir"`   // default /var/lib/hc-agent
	RuntimeDir string `yaml:"runtime_dir"` // default /run/hc-agent
	// SMBIOSSerialFile is read at start to tell, before metadata answers,
	// whether the state directory belongs to this server; "off" skips it
	// (simulated servers share the host's file).
	SMBIOSSerialFile string          `yaml:"smbios_serial_file"` // default /sys/class/dmi/id/product_serial
	Metadata         Metadata        `yaml:"metadata"`
	API              API             `yaml:"api"`
	PrivateNetworks  PrivateNetworks `yaml:"private_networks"`
	FloatingIPs      FloatingIPs     `yaml:"floating_ips"`
	Groups           []Group         `yaml:"groups"` // default none
	Metrics          Metrics         `yaml:"metrics"`
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
// overrides Endpoint. See ResolveToken.
type API struct {
	Endpoint     string        `yaml:"endpoint"`      // default https://api.hetzner.cloud/v1
	TokenFile    string        `yaml:"token_file"`    // must not be group- or world-readable; default none
	PollInterval time.Duration `yaml:"poll_interval"` // floating IP assignment refresh, default 20m (jittered)
	Token        Secret        `yaml:"-"`             // resolved token, never printed
}

// PrivateNetworks configures netconf.
type PrivateNetworks struct {
	Enabled            *bool    `yaml:"enabled"`              // default true; see IsEnabled
	MTU                int      `yaml:"mtu"`                  // default 1450, 576..1450
	DefaultRoute       bool     `yaml:"default_route"`        // default false
	DefaultRouteMetric int      `yaml:"default_route_metric"` // default 1024
	Exclude            []string `yaml:"exclude"`              // network IDs or names; default none
	PinMetadataRoute   bool     `yaml:"pin_metadata_route"`   // default false: only report the black hole
}

// IsEnabled reports whether private networks are configured (nil means the
// default, true).
func (p PrivateNetworks) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// FloatingIPs configures host configuration of floating IPs assigned here.
type FloatingIPs struct {
	Enabled       *bool  `yaml:"enabled"`        // default true; see IsEnabled
	LabelSelector string `yaml:"label_selector"` // only floating IPs matching it; default "" (all)
	IPv6Host      string `yaml:"ipv6_host"`      // interface ID within the /64, default "::1"
}

// IsEnabled reports whether floating IPs are configured on the host (nil
// means the default, true).
func (f FloatingIPs) IsEnabled() bool { return f.Enabled == nil || *f.Enabled }

// IPv6HostAddr parses ipv6_host, the one place it is parsed (Validate
// checks the same value). The daemon calls it once and passes the address
// on.
func (f FloatingIPs) IPv6HostAddr() (netip.Addr, error) {
	a, err := netip.ParseAddr(f.IPv6Host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parse floating_ips.ipv6_host %q: %w", f.IPv6Host, err)
	}
	return a, nil
}

// Group is one failover group. Every key is optional in the file, but
// Validate requires name, at least one of floating_ips, floating_ip_selector
// and private_ips, and the keys its mode needs (see Validate).
type Group struct {
	Name               string        `yaml:"name"`                 // required, unique, [A-Za-z0-9_.-], at most 63 characters
	FloatingIPs        []string      `yaml:"floating_ips"`         // names or IDs
	FloatingIPSelector string        `yaml:"floating_ip_selector"` // label selector; both keys may be set (union)
	PrivateIPs         []PrivateIP   `yaml:"private_ips"`          // private VIPs; default none
	Egress             bool          `yaml:"egress"`               // holder sends internet traffic from the floating IPs; default false
	Priority           int           `yaml:"priority"`             // higher wins, 0..255, default 100
	Peers              []string      `yaml:"peers"`                // private addresses (host or host:port)
	PeerSelector       string        `yaml:"peer_selector"`        // discover peers by server label selector
	Bind               string        `yaml:"bind"`                 // private IP to bind gossip to; default: first private IP
	Port               int           `yaml:"port"`                 // gossip port, default 7946
	KeyFile            string        `yaml:"key_file"`             // gossip encryption key (16/24/32 bytes, raw or base64)
	Insecure           bool          `yaml:"insecure"`             // allow a group without a key, default false
	Mode               string        `yaml:"mode"`                 // memberlist (default) or keepalived
	KeepalivedFIFO     string        `yaml:"keepalived_fifo"`      // notify_fifo path in keepalived mode
	KeepalivedInstance string        `yaml:"keepalived_instance"`  // VRRP instance name to follow; default: any
	Preempt            bool          `yaml:"preempt"`              // default false
	PreemptDelay       time.Duration `yaml:"preempt_delay"`        // default 30s; 0 preempts at once
	MaxMovesPerMinute  int           `yaml:"max_moves_per_minute"` // default 3
	Health             HealthCheck   `yaml:"health"`
}

// PrivateIP is one private VIP of a group: an address in one of the
// server's private networks that moves with the group like a floating IP.
// Both keys are required; there is no default kind.
type PrivateIP struct {
	IP  string `yaml:"ip"`  // IPv4 address inside a private network's range
	Via Via    `yaml:"via"` // alias or route
}

// Addr returns the parsed IP, or the zero Addr when it is not an IPv4
// address (Validate reports that).
func (p PrivateIP) Addr() netip.Addr {
	a, err := netip.ParseAddr(p.IP)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// HealthCheck decides whether this member is a candidate.
type HealthCheck struct {
	Type     string        `yaml:"type"`     // none (default), http, tcp, command
	Target   string        `yaml:"target"`   // URL for http, host:port for tcp
	Command  []string      `yaml:"command"`  // argv for command
	Interval time.Duration `yaml:"interval"` // default 1s
	Timeout  time.Duration `yaml:"timeout"`  // default 500ms, at most interval
	Rise     int           `yaml:"rise"`     // default 2
	Fall     int           `yaml:"fall"`     // default 2
}

// Metrics configures the metrics, /healthz and /status listener.
type Metrics struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9183; "" keeps the default, "off" disables
	// WebConfigFile is an exporter-toolkit web configuration file (the
	// format of node_exporter's --web.config.file): TLS and basic auth for
	// the listener. Empty (the default) serves plain HTTP.
	WebConfigFile string `yaml:"web_config_file"`
}

// Enabled reports whether the metrics listener runs.
func (m Metrics) Enabled() bool { return m.Listen != MetricsOff }

// Secret is a string that never prints: it implements fmt.Formatter,
// fmt.Stringer, slog.LogValuer and yaml/json marshalling as "[redacted]".
// An empty Secret prints as empty so that users see it is unset. Reveal
// returns the value for the one place that needs it.
type Secret string

// Default returns the configuration used when the file is absent or empty.
func Default() Config {
	pn, fip := true, true
	return Config{
		Log:              Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		StateDir:         DefaultStateDir,
		RuntimeDir:       DefaultRuntimeDir,
		SMBIOSSerialFile: DefaultSMBIOSSerialFile,
		Metadata: Metadata{
			Endpoint:     metadata.DefaultEndpoint,
			Timeout:      DefaultMetadataTimeout,
			Attempts:     DefaultMetadataAttempts,
			PollInterval: DefaultMetadataPollInterval,
		},
		API: API{
			Endpoint:     DefaultAPIEndpoint,
			PollInterval: DefaultAPIPollInterval,
		},
		PrivateNetworks: PrivateNetworks{
			Enabled:            &pn,
			MTU:                DefaultMTU,
			DefaultRouteMetric: DefaultDefaultRouteMetric,
		},
		FloatingIPs: FloatingIPs{
			Enabled:  &fip,
			IPv6Host: DefaultIPv6Host,
		},
		Metrics: Metrics{Listen: DefaultMetricsListen},
	}
}

// DefaultGroup returns the values a group entry gets for the keys it does
// not set. Name and the floating IP and peer keys have no default.
func DefaultGroup() Group {
	return Group{
		Priority:          DefaultGroupPriority,
		Port:              DefaultGroupPort,
		Mode:              DefaultGroupMode,
		PreemptDelay:      DefaultGroupPreemptDelay,
		MaxMovesPerMinute: DefaultGroupMaxMovesPerMinute,
		Health: HealthCheck{
			Type:     DefaultHealthType,
			Interval: DefaultHealthInterval,
			Timeout:  DefaultHealthTimeout,
			Rise:     DefaultHealthRise,
			Fall:     DefaultHealthFall,
		},
	}
}
