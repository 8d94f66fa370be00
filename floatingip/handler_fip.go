package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// FloatingIPsConfig configures the floating IP Handler of a group.
type FloatingIPsConfig struct {
	// Self is this server's ID.
	Self int64
	// Refs are names or IDs; Selector a label selector. At least one of
	// them must be set.
	Refs     []string
	Selector string
	// Owner is the owner of the host addresses (see Host).
	Owner string
	// IPv6Host is the interface ID configured within IPv6 /64s.
	IPv6Host netip.Addr
	// ActionTimeout bounds waiting for one assign action.
	ActionTimeout time.Duration
	Cloud         Cloud
	Host          Host
	// Changed, if set, is called after each read and each change of the
	// host configuration, once per floating IP; it must not block.
	Changed func(f FloatingIP, configuredHere, assignedHere bool)
}

// FloatingIPs is the Handler of floating IPs: Acquire assigns each one
// to this server and waits for the action; the addresses (IPv4 /32, one
// address of the IPv6 /64) are configured as one unit through Host.
type FloatingIPs struct {
	cfg FloatingIPsConfig

	mu         sync.Mutex
	fips       []FloatingIP // as last read from the API
	readAt     time.Time
	configured bool
}

var _ Handler = (*FloatingIPs)(nil)

// NewFloatingIPs returns the floating IP handler for cfg.
func NewFloatingIPs(cfg FloatingIPsConfig) (*FloatingIPs, error) {
	switch {
	case len(cfg.Refs) == 0 && cfg.Selector == "":
		return nil, errors.New("new floating ip handler: no floating ips")
	case cfg.Cloud == nil || cfg.Host == nil:
		return nil, errors.New("new floating ip handler: cloud and host are required")
	case cfg.Self == 0:
		return nil, errors.New("new floating ip handler: unknown server id")
	}
	return &FloatingIPs{cfg: cfg}, nil
}

// Kind returns KindFloatingIP.
func (h *FloatingIPs) Kind() AddressKind { return KindFloatingIP }

// Holder reads the floating IPs and returns who holds them (see Handler).
func (h *FloatingIPs) Holder(ctx context.Context) (int64, error) {
	var fips []FloatingIP
	var errs []error
	for _, ref := range h.cfg.Refs {
		f, err := h.cfg.Cloud.GetFloatingIP(ctx, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("get floating ip %s: %w", ref, err))
			continue
		}
		fips = append(fips, f)
	}
	if h.cfg.Selector != "" {
		list, err := h.cfg.Cloud.ListFloatingIPs(ctx, h.cfg.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("list floating ips %q: %w", h.cfg.Selector, err))
		}
		for _, f := range list {
			if !slices.ContainsFunc(fips, func(x FloatingIP) bool { return x.ID == f.ID }) {
				fips = append(fips, f)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if len(fips) == 0 {
		return 0, errors.New("no floating ips found")
	}
	slices.SortFunc(fips, func(a, b FloatingIP) int { return int(a.ID - b.ID) })
	h.mu.Lock()
	h.fips = fips
	h.readAt = time.Now()
	h.mu.Unlock()
	h.changed()
	return holderOf(fips, h.cfg.Self), nil
}

// holderOf returns the server holding the floating IPs: self only if self
// holds all of them, else the holder of the first assigned one.
func holderOf(fips []FloatingIP, self int64) int64 {
	all := true
	var first int64
	for _, f := range fips {
		if f.ServerID != self {
			all = false
		}
		if first == 0 && f.ServerID != 0 && f.ServerID != self {
			first = f.ServerID
		}
	}
	if all && len(fips) > 0 {
		return self
	}
	return first
}

func (h *FloatingIPs) prefixes() ([]netip.Prefix, error) {
	h.mu.Lock()
	fips := slices.Clone(h.fips)
	h.mu.Unlock()
	var ps []netip.Prefix
	for _, f := range fips {
		p, err := HostPrefix(f, h.cfg.IPv6Host)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Configure configures every floating IP last read on the public NIC.
func (h *FloatingIPs) Configure(ctx context.Context) error {
	ps, err := h.prefixes()
	if err != nil {
		return err
	}
	if err := h.cfg.Host.Set(ctx, h.cfg.Owner, ps); err != nil {
		return err
	}
	h.setConfigured(true)
	return nil
}

// Unconfigure removes the group's floating IP addresses from the host.
func (h *FloatingIPs) Unconfigure(ctx context.Context) error {
	if err := h.cfg.Host.Set(ctx, h.cfg.Owner, nil); err != nil {
		return err
	}
	h.setConfigured(false)
	return nil
}

func (h *FloatingIPs) setConfigured(c bool) {
	h.mu.Lock()
	changed := h.configured != c
	h.configured = c
	h.mu.Unlock()
	if changed {
		h.changed()
	}
}

func (h *FloatingIPs) changed() {
	if h.cfg.Changed == nil {
		return
	}
	h.mu.Lock()
	fips, configured := slices.Clone(h.fips), h.configured
	h.mu.Unlock()
	for _, f := range fips {
		h.cfg.Changed(f, configured, f.ServerID == h.cfg.Self)
	}
}

// Acquire assigns every floating IP not assigned here to this server and
// waits for each action (see Handler).
func (h *FloatingIPs) Acquire(ctx context.Context) error {
	h.mu.Lock()
	fips := slices.Clone(h.fips)
	h.mu.Unlock()
	var errs []error
	// callFailed: an assign call or the wait for it failed. The API may
	// have refused because another member's action runs (locked), so
	// only failed actions (they ran and ended in "error") count as our
	// own failure.
	callFailed := false
	for _, f := range fips {
		if f.ServerID == h.cfg.Self {
			continue
		}
		a, err := h.cfg.Cloud.Assign(ctx, f.ID, h.cfg.Self)
		if err != nil {
			errs = append(errs, fmt.Errorf("assign floating ip %d: %w", f.ID, err))
			callFailed = true
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, h.cfg.ActionTimeout)
		a, err = h.cfg.Cloud.WaitAction(wctx, a.ID)
		cancel()
		switch {
		case a.Status == "error":
			// The action ran and failed; cloudapi also returns an error
			// for it.
			errs = append(errs, fmt.Errorf("action %d: %s %s: %s", a.ID, a.Status, a.ErrorCode, a.ErrorMessage))
		case err != nil:
			errs = append(errs, fmt.Errorf("wait action %d: %w", a.ID, err))
			callFailed = true
		case a.Status != "success":
			errs = append(errs, fmt.Errorf("action %d: %s %s: %s", a.ID, a.Status, a.ErrorCode, a.ErrorMessage))
			callFailed = true
		}
	}
	if len(errs) > 0 && !callFailed {
		errs = append([]error{ErrMoveFailed}, errs...)
	}
	return errors.Join(errs...)
}

// Status describes each floating IP as last read; HolderByView is left
// for the group to fill in.
func (h *FloatingIPs) Status() []AddressStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []AddressStatus
	for _, f := range h.fips {
		ip := f.IP.String()
		if f.Network.IsValid() && f.Type == "ipv6" {
			ip = f.Network.String()
		}
		out = append(out, AddressStatus{
			ID: f.ID, Name: f.Name, IP: ip, HolderByAPI: f.ServerID, ReadAt: h.readAt,
			ConfiguredHere: h.configured,
		})
	}
	return out
}
