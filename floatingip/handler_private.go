package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi"
)

// Kinds of private VIPs (config groups[].private_ips[].via).
const (
	// KindAliasIP is a private VIP held as an alias IP of the holder's
	// attachment to the network.
	KindAliasIP AddressKind = "alias_ip"
	// KindRouteIP is a private VIP held as a network route to the holder's
	// private IP.
	KindRouteIP AddressKind = "route_ip"
	// KindMixed is a group whose addresses are of several kinds (Handlers).
	KindMixed AddressKind = "mixed"
)

// PrivateVIP is one private VIP of a group, resolved against this server's
// metadata (config.PrivateIP.Network).
type PrivateVIP struct {
	// IP is the VIP, IPv4.
	IP netip.Addr
	// NetworkID is the private network it lives in.
	NetworkID int64
	// MAC is this server's NIC in that network, where the VIP is configured.
	MAC net.HardwareAddr
	// SelfIP is this server's own IP in that network: a route VIP's gateway
	// when this server holds it.
	SelfIP netip.Addr
}

// PrivateHost configures private VIPs on this host's private NICs.
// *netconf.PrivateVIPs implements it. Both calls are idempotent.
type PrivateHost interface {
	AddVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error
	RemoveVIP(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error
}

// actionWaiter is the part of the API every private VIP kind needs.
type actionWaiter interface {
	// WaitAction waits until the action is no longer running; an action
	// that ended in "error" also returns an error.
	WaitAction(ctx context.Context, actionID int64) (cloudapi.Action, error)
}

// PrivateVIPsConfig configures the Handler of a group's private VIPs of one
// kind (NewAliasIPs, NewRouteIPs).
type PrivateVIPsConfig struct {
	// Self is this server's ID.
	Self int64
	// VIPs are the group's VIPs of the handler's kind.
	VIPs []PrivateVIP
	// ActionTimeout bounds waiting for one action.
	ActionTimeout time.Duration
	// ServerSelector, if set, is a label selector of the group's servers
	// (its peer selector): alias VIPs read those before all servers.
	ServerSelector string
	Host           PrivateHost
	// Changed, if set, is called after each read and each change of the
	// host configuration, once per VIP; it must not block.
	Changed func(vip netip.Addr, configuredHere, assignedHere bool)
}

func (c PrivateVIPsConfig) validate(kind AddressKind) error {
	var errs []error
	if len(c.VIPs) == 0 {
		errs = append(errs, errors.New("no private vips"))
	}
	for _, v := range c.VIPs {
		if !v.IP.Is4() || v.NetworkID == 0 || len(v.MAC) == 0 || !v.SelfIP.Is4() {
			errs = append(errs, fmt.Errorf("private vip %v: ip, network, mac and own ip are required", v.IP))
		}
	}
	if c.Host == nil {
		errs = append(errs, errors.New("host is required"))
	}
	if c.Self == 0 {
		errs = append(errs, errors.New("unknown server id"))
	}
	if c.ActionTimeout <= 0 {
		errs = append(errs, errors.New("action timeout must be > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("new %s handler: %w", kind, err)
	}
	return nil
}

// privateVIPs is what both private kinds share: which server holds each
// VIP by the last read, whether the VIPs are configured here, and the
// methods of Handler that do not depend on the kind. mu guards it and the
// fields of the handler that embeds it.
type privateVIPs struct {
	kind AddressKind
	cfg  PrivateVIPsConfig

	mu sync.Mutex
	// holders[i] is the holder of cfg.VIPs[i] by the last read, 0 for none.
	holders    []int64
	readAt     time.Time
	configured bool
}

// Kind returns the handler's kind.
func (p *privateVIPs) Kind() AddressKind { return p.kind }

// Configure adds every VIP as /32 on its private NIC.
func (p *privateVIPs) Configure(ctx context.Context) error { return p.setConfigured(ctx, true) }

// Unconfigure removes every VIP of the group from its private NIC.
func (p *privateVIPs) Unconfigure(ctx context.Context) error { return p.setConfigured(ctx, false) }

func (p *privateVIPs) setConfigured(ctx context.Context, c bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.configure(ctx, c); err != nil {
		return err
	}
	if p.configured != c {
		p.configured = c
		p.notify()
	}
	return nil
}

// Status describes each VIP as last read; ID is the network's ID and
// Kind the handler's.
func (p *privateVIPs) Status() []AddressStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]AddressStatus, 0, len(p.cfg.VIPs))
	for i, v := range p.cfg.VIPs {
		s := AddressStatus{ID: v.NetworkID, IP: v.IP.String(), ReadAt: p.readAt, ConfiguredHere: p.configured, Kind: p.kind}
		if i < len(p.holders) {
			s.HolderByAPI = p.holders[i]
		}
		out = append(out, s)
	}
	return out
}

// holder returns self if self holds every VIP, else the first other
// holder, else 0: the VIPs of a group move as one unit (see Handler).
func (p *privateVIPs) holder() int64 {
	all := len(p.holders) > 0
	var first int64
	for _, h := range p.holders {
		if h != p.cfg.Self {
			all = false
			if first == 0 && h != 0 {
				first = h
			}
		}
	}
	if all {
		return p.cfg.Self
	}
	return first
}

// configure adds (or removes) every VIP on the host and keeps going past a
// failure.
func (p *privateVIPs) configure(ctx context.Context, add bool) error {
	var errs []error
	for _, v := range p.cfg.VIPs {
		var err error
		if add {
			err = p.cfg.Host.AddVIP(ctx, v.MAC, v.IP)
		} else {
			err = p.cfg.Host.RemoveVIP(ctx, v.MAC, v.IP)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reassert adds the VIPs again when they are configured here and this
// server holds them: a DHCP client on the private NIC (dhclient's flush on
// release or expiry) may have removed them since. Each read does it, so the
// VIPs come back within the group's refresh interval. AddVIP is idempotent;
// its errors show at the next Configure, so they are not returned here.
func (p *privateVIPs) reassert(ctx context.Context, holder int64) {
	if p.configured && holder == p.cfg.Self {
		_ = p.configure(ctx, true)
	}
}

// notify calls Changed for each VIP.
func (p *privateVIPs) notify() {
	if p.cfg.Changed == nil {
		return
	}
	for i, v := range p.cfg.VIPs {
		p.cfg.Changed(v.IP, p.configured, i < len(p.holders) && p.holders[i] == p.cfg.Self)
	}
}

// waitAction waits for a, bounded by the action timeout, and tells a move
// that ran and failed (failed) from a call or wait that failed.
func waitAction(ctx context.Context, api actionWaiter, timeout time.Duration, a cloudapi.Action) (failed bool, err error) {
	if a.Status == "success" {
		return false, nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, err := api.WaitAction(wctx, a.ID)
	switch {
	case got.Status == "error":
		return true, fmt.Errorf("action %d (%s): %s %s", got.ID, got.Command, got.ErrorCode, got.ErrorMessage)
	case err != nil:
		return false, err
	case got.Status != "success":
		return false, fmt.Errorf("action %d (%s): %s", got.ID, got.Command, got.Status)
	}
	return false, nil
}

// moveErr joins the errors of an Acquire and wraps ErrMoveFailed when every
// failure was an action that ran and failed (see Handler).
func moveErr(errs []error, callFailed bool) error {
	if len(errs) > 0 && !callFailed {
		errs = append([]error{ErrMoveFailed}, errs...)
	}
	return errors.Join(errs...)
}
