package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem Validate found, naming the key as written in
// the file, e.g. "groups[0].health.rise: must be >= 1".
type FieldError struct {
	Key     string
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Key + ": " + e.Problem }

// problems collects FieldErrors.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &FieldError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate checks the values without touching the host: no file is opened,
// no address is resolved, no interface is looked at. It returns an
// errors.Join of *FieldError, one per problem, or nil.
//
// Group rules: name required, unique, made of [A-Za-z0-9_.-], at most 63
// characters (it becomes a metric label); mode memberlist or keepalived;
// at least one of floating_ips, floating_ip_selector and private_ips; each
// private_ips entry an RFC 1918 IPv4 address, listed once across all groups,
// with via alias or route; egress only with floating IPs; priority 0..255 (it fits
// one byte of gossip metadata, as VRRP priorities do); memberlist mode needs
// peers or peer_selector and key_file unless insecure is true; keepalived
// mode needs keepalived_fifo; health type none, http (target is an http or
// https URL), tcp (target is host:port) or command (command is a non-empty
// argv); durations > 0 except preempt_delay >= 0; health timeout at most its
// interval; rise, fall and max_moves_per_minute >= 1.
func (c Config) Validate() error {
	var p problems
	oneOf(&p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(&p, "log.format", c.Log.Format, "text", "json")
	absPath(&p, "state_dir", c.StateDir, true)
	absPath(&p, "runtime_dir", c.RuntimeDir, true)
	if c.SMBIOSSerialFile != SMBIOSSerialOff {
		absPath(&p, "smbios_serial_file", c.SMBIOSSerialFile, true)
	}

	httpURL(&p, "metadata.endpoint", c.Metadata.Endpoint)
	positive(&p, "metadata.timeout", c.Metadata.Timeout)
	atLeast(&p, "metadata.attempts", c.Metadata.Attempts, 1)
	positive(&p, "metadata.poll_interval", c.Metadata.PollInterval)

	httpURL(&p, "api.endpoint", c.API.Endpoint)
	positive(&p, "api.poll_interval", c.API.PollInterval)

	pn := c.PrivateNetworks
	if pn.MTU < MinMTU || pn.MTU > MaxMTU {
		p.add("private_networks.mtu", "must be between %d and %d, got %d", MinMTU, MaxMTU, pn.MTU)
	}
	if pn.DefaultRouteMetric < 0 || int64(pn.DefaultRouteMetric) > 1<<32-1 {
		p.add("private_networks.default_route_metric", "must be between 0 and 4294967295, got %d", pn.DefaultRouteMetric)
	}
	nonEmptyItems(&p, "private_networks.exclude", pn.Exclude)

	if a, err := netip.ParseAddr(c.FloatingIPs.IPv6Host); err != nil || !a.Is6() || a.Zone() != "" {
		p.add("floating_ips.ipv6_host", "must be an IPv6 interface ID such as \"::1\", got %q", c.FloatingIPs.IPv6Host)
	} else if b := a.As16(); [8]byte(b[:8]) != [8]byte{} || a.IsUnspecified() {
		p.add("floating_ips.ipv6_host", "must be a non-zero interface ID within a /64 (upper 64 bits zero), got %q", c.FloatingIPs.IPv6Host)
	}

	if c.Metrics.Listen != MetricsOff {
		hostPort(&p, "metrics.listen", c.Metrics.Listen, false)
	}

	seen := map[string]int{}
	seenVIP := map[netip.Addr]string{}
	for i, g := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		if g.Name != "" {
			if j, ok := seen[g.Name]; ok {
				p.add(key+".name", "%q is already used by groups[%d]", g.Name, j)
			} else {
				seen[g.Name] = i
			}
		}
		g.validate(&p, key)
		g.validatePrivateIPs(&p, key, seenVIP)
	}
	return errors.Join(p...)
}

func (g Group) validate(p *problems, key string) {
	switch {
	case g.Name == "":
		p.add(key+".name", "required")
	case len(g.Name) > maxGroupNameLen || !groupNameRE.MatchString(g.Name):
		p.add(key+".name", "must be 1 to %d characters of A-Z a-z 0-9 _ . -, got %q", maxGroupNameLen, g.Name)
	}
	if len(g.FloatingIPs) == 0 && strings.TrimSpace(g.FloatingIPSelector) == "" && len(g.PrivateIPs) == 0 {
		p.add(key+".floating_ips", "floating_ips, floating_ip_selector or private_ips is required")
	}
	nonEmptyItems(p, key+".floating_ips", g.FloatingIPs)
	if g.Priority < 0 || g.Priority > MaxGroupPriority {
		p.add(key+".priority", "must be between 0 and %d, got %d", MaxGroupPriority, g.Priority)
	}
	if g.Port < 1 || g.Port > 65535 {
		p.add(key+".port", "must be between 1 and 65535, got %d", g.Port)
	}
	if g.Bind != "" {
		if _, err := netip.ParseAddr(g.Bind); err != nil {
			p.add(key+".bind", "must be an IP address, got %q", g.Bind)
		}
	}
	for j, peer := range g.Peers {
		hostPort(p, fmt.Sprintf("%s.peers[%d]", key, j), peer, true)
	}
	if g.PreemptDelay < 0 {
		p.add(key+".preempt_delay", "must be >= 0, got %s", g.PreemptDelay)
	}
	atLeast(p, key+".max_moves_per_minute", g.MaxMovesPerMinute, 1)

	switch g.Mode {
	case ModeMemberlist:
		if len(g.Peers) == 0 && strings.TrimSpace(g.PeerSelector) == "" {
			p.add(key+".peers", "peers or peer_selector is required in memberlist mode")
		}
		if g.KeyFile == "" && !g.Insecure {
			p.add(key+".key_file", "required in memberlist mode (gossip encryption); set insecure: true to run without")
		}
	case ModeKeepalived:
		if g.KeepalivedFIFO == "" {
			p.add(key+".keepalived_fifo", "required in keepalived mode")
		}
	default:
		p.add(key+".mode", "must be %q or %q, got %q", ModeMemberlist, ModeKeepalived, g.Mode)
	}
	absPath(p, key+".keepalived_fifo", g.KeepalivedFIFO, false)

	g.Health.validate(p, key+".health")
}

func (h HealthCheck) validate(p *problems, key string) {
	switch h.Type {
	case HealthNone:
		if h.Target != "" {
			p.add(key+".target", "not used by type %q", h.Type)
		}
		if len(h.Command) > 0 {
			p.add(key+".command", "not used by type %q", h.Type)
		}
	case HealthHTTP:
		httpURL(p, key+".target", h.Target)
		if len(h.Command) > 0 {
			p.add(key+".command", "not used by type %q", h.Type)
		}
	case HealthTCP:
		if h.Target == "" {
			p.add(key+".target", "required for type %q (host:port)", h.Type)
		} else {
			hostPort(p, key+".target", h.Target, false)
		}
		if len(h.Command) > 0 {
			p.add(key+".command", "not used by type %q", h.Type)
		}
	case HealthCommand:
		if len(h.Command) == 0 || h.Command[0] == "" {
			p.add(key+".command", "required for type %q (argv list, first element the program)", h.Type)
		}
		if h.Target != "" {
			p.add(key+".target", "not used by type %q", h.Type)
		}
	default:
		p.add(key+".type", "must be one of none, http, tcp, command, got %q", h.Type)
	}
	positive(p, key+".interval", h.Interval)
	positive(p, key+".timeout", h.Timeout)
	if h.Timeout > h.Interval && h.Interval > 0 {
		p.add(key+".timeout", "must not exceed interval (%s), got %s", h.Interval, h.Timeout)
	}
	atLeast(p, key+".rise", h.Rise, 1)
	atLeast(p, key+".fall", h.Fall, 1)
}

func oneOf(p *problems, key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func positive(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be > 0, got %s", d)
	}
}

func atLeast(p *problems, key string, v, minimum int) {
	if v < minimum {
		p.add(key, "must be >= %d, got %d", minimum, v)
	}
}

func absPath(p *problems, key, v string, required bool) {
	switch {
	case v == "" && required:
		p.add(key, "required")
	case v != "" && !filepath.IsAbs(v):
		p.add(key, "must be an absolute path, got %q", v)
	}
}

func nonEmptyItems(p *problems, key string, items []string) {
	for i, s := range items {
		if strings.TrimSpace(s) == "" {
			p.add(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
	}
}

func httpURL(p *problems, key, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(key, "must be an http or https URL, got %q", v)
	}
}

// hostPort checks "host:port", or just "host" when portOptional.
func hostPort(p *problems, key, v string, portOptional bool) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		if portOptional && v != "" && !strings.ContainsAny(v, " /") {
			if strings.Contains(v, ":") {
				if _, aerr := netip.ParseAddr(v); aerr != nil {
					p.add(key, "must be host or host:port (IPv6 as [addr]:port), got %q", v)
				}
			}
			return
		}
		p.add(key, "must be host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || (n == 0 && portOptional) {
		p.add(key, "port must be 1..65535, got %q", port)
	}
	if strings.ContainsAny(host, " /") {
		p.add(key, "invalid host %q", host)
	}
}
