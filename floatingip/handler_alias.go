package floatingip

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi"
)

// AliasCloud is the part of the API that alias VIPs need. *cloudapi.Client
// implements it.
type AliasCloud interface {
	// ListServers lists the servers (selector "" is all) with their
	// private networks' alias IPs.
	ListServers(ctx context.Context, selector string) ([]cloudapi.Server, error)
	// ChangeAliasIPs replaces the whole alias list of a server's attachment
	// to a network.
	ChangeAliasIPs(ctx context.Context, serverID, networkID int64, ips []netip.Addr) (cloudapi.Action, error)
	actionWaiter
}

// AliasIPs is the Handler of alias VIPs: a VIP is held by the server whose
// attachment to the VIP's network lists it among its alias IPs.
//
// The API's change_alias_ips replaces an attachment's whole alias list, so
// every change is a read-modify-write: Acquire starts from the lists that
// Holder read (the group reads right before it acquires) and only removes
// or adds the group's VIPs, so every other alias of both servers stays. The
// API refuses an alias that another server's attachment still holds
// (ip_not_available), so the VIP is removed from the old holder first (the
// API accepts that also when the old holder is dead), then added here.
// Each action is awaited; the group verifies with Holder.
type AliasIPs struct {
	cloud AliasCloud

	privateVIPs // mu guards the fields below too
	// aliases[server][network] are the alias lists as last read.
	aliases map[int64]map[int64][]netip.Addr
}

var _ Handler = (*AliasIPs)(nil)

// NewAliasIPs returns the alias VIP handler for cfg.
func NewAliasIPs(cfg PrivateVIPsConfig, cloud AliasCloud) (*AliasIPs, error) {
	if err := cfg.validate(KindAliasIP); err != nil {
		return nil, err
	}
	if cloud == nil {
		return nil, fmt.Errorf("new %s handler: cloud is required", KindAliasIP)
	}
	cfg.VIPs = slices.Clone(cfg.VIPs)
	return &AliasIPs{cloud: cloud, privateVIPs: privateVIPs{kind: KindAliasIP, cfg: cfg}, aliases: map[int64]map[int64][]netip.Addr{}}, nil
}

// Holder lists the servers and returns who holds the VIPs (see Handler).
// A VIP that several attachments list (an API that allows shared aliases)
// counts as held by another server until only this one lists it, so that
// Acquire removes it there.
func (h *AliasIPs) Holder(ctx context.Context) (int64, error) {
	servers, err := h.listServers(ctx)
	if err != nil {
		return 0, err
	}
	aliases := map[int64]map[int64][]netip.Addr{}
	for _, s := range servers {
		for _, pn := range s.PrivateNets {
			if aliases[s.ID] == nil {
				aliases[s.ID] = map[int64][]netip.Addr{}
			}
			// Present, even when empty: the attachment's list was read.
			aliases[s.ID][pn.NetworkID] = append([]netip.Addr{}, pn.AliasIPs...)
		}
	}
	h.mu.Lock()
	h.aliases = aliases
	h.holders = make([]int64, len(h.cfg.VIPs))
	for i, v := range h.cfg.VIPs {
		h.holders[i] = aliasHolder(aliases, v, h.cfg.Self)
	}
	h.readAt = time.Now()
	holder := h.holder()
	h.notify()
	h.reassert(ctx, holder)
	h.mu.Unlock()
	return holder, nil
}

// listServers lists the servers that may hold the VIPs. With a
// ServerSelector (the group's peer selector) it lists those first, one page
// for a group instead of the whole project, and lists every server only
// when that does not settle it: this server is not among them, or some VIP
// is on none of them (unassigned, or held by a server outside the group,
// which a move must see to remove it there).
func (h *AliasIPs) listServers(ctx context.Context) ([]cloudapi.Server, error) {
	if sel := h.cfg.ServerSelector; sel != "" {
		servers, err := h.cloud.ListServers(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("list servers %q for alias ips: %w", sel, err)
		}
		if h.settles(servers) {
			return servers, nil
		}
	}
	servers, err := h.cloud.ListServers(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list servers for alias ips: %w", err)
	}
	return servers, nil
}

// settles reports whether servers include this one and a holder of every
// VIP.
func (h *AliasIPs) settles(servers []cloudapi.Server) bool {
	if !slices.ContainsFunc(servers, func(s cloudapi.Server) bool { return s.ID == h.cfg.Self }) {
		return false
	}
	for _, v := range h.cfg.VIPs {
		held := slices.ContainsFunc(servers, func(s cloudapi.Server) bool {
			return slices.ContainsFunc(s.PrivateNets, func(pn cloudapi.PrivateNet) bool {
				return pn.NetworkID == v.NetworkID && slices.Contains(pn.AliasIPs, v.IP)
			})
		})
		if !held {
			return false
		}
	}
	return true
}

// aliasHolder returns the server whose attachment lists v: another server
// before self, the lowest ID first, 0 for none.
func aliasHolder(aliases map[int64]map[int64][]netip.Addr, v PrivateVIP, self int64) int64 {
	var ids []int64
	for id, nets := range aliases {
		if slices.Contains(nets[v.NetworkID], v.IP) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id != self {
			return id
		}
	}
	if len(ids) > 0 {
		return self
	}
	return 0
}

// aliasMove is the change of one network's alias lists that Acquire makes.
type aliasMove struct {
	network int64
	vips    []netip.Addr
	// from are the servers that hold some of vips, by the last read.
	from []int64
}

// Acquire moves every VIP not held here: per network, removes the VIPs from
// the old holders' alias lists, then adds them to this server's, each a
// read-modify-write of the lists Holder read, each action awaited (see
// Handler). A VIP that the API still refuses as held elsewhere
// (ip_not_available) is not taken from whoever got it since the read:
// that is another member that won a race, and the group's verifying read
// tells it so; taking it back would make the loser win.
func (h *AliasIPs) Acquire(ctx context.Context) error {
	var (
		errs       []error
		callFailed bool
	)
	for _, m := range h.plan() {
		if failed, err := h.move(ctx, m); err != nil {
			errs = append(errs, err)
			if !failed {
				callFailed = true
			}
		}
	}
	return moveErr(errs, callFailed)
}

// plan groups the VIPs not held here by network, in the order of the
// configuration.
func (h *AliasIPs) plan() []aliasMove {
	h.mu.Lock()
	defer h.mu.Unlock()
	var moves []aliasMove
	for i, v := range h.cfg.VIPs {
		if i < len(h.holders) && h.holders[i] == h.cfg.Self {
			continue
		}
		j := slices.IndexFunc(moves, func(m aliasMove) bool { return m.network == v.NetworkID })
		if j < 0 {
			moves = append(moves, aliasMove{network: v.NetworkID})
			j = len(moves) - 1
		}
		moves[j].vips = append(moves[j].vips, v.IP)
		if i < len(h.holders) {
			if from := h.holders[i]; from != 0 && !slices.Contains(moves[j].from, from) {
				moves[j].from = append(moves[j].from, from)
			}
		}
	}
	return moves
}

// move removes m.vips from the old holders, then adds them here. failed
// reports that the error is an action that ran and failed.
func (h *AliasIPs) move(ctx context.Context, m aliasMove) (failed bool, err error) {
	for _, from := range m.from {
		failed, err := h.change(ctx, from, m.network, func(list []netip.Addr) []netip.Addr {
			return slices.DeleteFunc(list, func(a netip.Addr) bool { return slices.Contains(m.vips, a) })
		})
		switch {
		case err == nil:
		case cloudapi.IsError(err, cloudapi.CodeNotFound, cloudapi.CodeServerNotAttachedToNetwork):
			// The old holder or its attachment is gone, and the VIP
			// with it.
		default:
			// The API would refuse the add while the old holder has the
			// VIP: report the removal, a failed action as our failed
			// move (retried soon), a refused call as such.
			return failed, err
		}
	}
	return h.change(ctx, h.cfg.Self, m.network, func(list []netip.Addr) []netip.Addr {
		for _, v := range m.vips {
			if !slices.Contains(list, v) {
				list = append(list, v)
			}
		}
		return list
	})
}

// change sends server's alias list in network as edit makes it from the
// list last read, and waits for the action. An unchanged list sends
// nothing. The list last read is updated when the action succeeded.
func (h *AliasIPs) change(ctx context.Context, server, network int64, edit func([]netip.Addr) []netip.Addr) (failed bool, err error) {
	h.mu.Lock()
	old, read := h.aliases[server][network]
	old = slices.Clone(old)
	h.mu.Unlock()
	if !read {
		// Sending a list without having read the current one would drop
		// every other alias of the attachment.
		return false, fmt.Errorf("change alias ips of server %d in network %d: its alias list was not read (not attached?)", server, network)
	}
	list := edit(slices.Clone(old))
	if slices.Equal(list, old) {
		return false, nil
	}
	a, err := h.cloud.ChangeAliasIPs(ctx, server, network, list)
	if err != nil {
		return false, fmt.Errorf("change alias ips of server %d in network %d: %w", server, network, err)
	}
	if failed, err := waitAction(ctx, h.cloud, h.cfg.ActionTimeout, a); err != nil {
		return failed, fmt.Errorf("change alias ips of server %d in network %d: %w", server, network, err)
	}
	h.mu.Lock()
	if h.aliases[server] != nil {
		h.aliases[server][network] = list
	}
	h.mu.Unlock()
	return false, nil
}
