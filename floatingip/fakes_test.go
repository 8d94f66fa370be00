package floatingip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeCloud is a stateful fake of the floating IP API: who holds which IP,
// assign actions that complete after latency, "locked" while an action on
// the same floating IP runs, and failure injection.
type fakeCloud struct {
	mu          sync.Mutex
	fips        map[int64]*FloatingIP
	actions     map[int64]*fakeAction
	nextAction  int64
	latency     time.Duration
	failAssign  error // returned by Assign when set
	failGet     error // returned by reads when set
	failActions int   // so many next assign actions end in status "error"
	assigns     []string
	assignAt    []time.Time // when each Assign call arrived
	gets        int
}

type fakeAction struct {
	fip, server int64
	done        time.Time
	applied     bool
	fail        bool // ends in "error" without moving anything
}

func newFakeCloud(latency time.Duration, fips ...FloatingIP) *fakeCloud {
	c := &fakeCloud{fips: map[int64]*FloatingIP{}, actions: map[int64]*fakeAction{}, latency: latency}
	for _, f := range fips {
		c.fips[f.ID] = &f
	}
	return c
}

// settle applies the actions that completed by now, in order.
func (c *fakeCloud) settle() {
	now := time.Now()
	ids := slices.Sorted(maps.Keys(c.actions))
	for _, id := range ids {
		a := c.actions[id]
		if !a.applied && !now.Before(a.done) {
			a.applied = true
			if !a.fail {
				c.fips[a.fip].ServerID = a.server
			}
		}
	}
}

func (c *fakeCloud) GetFloatingIP(ctx context.Context, idOrName string) (FloatingIP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	c.gets++
	if c.failGet != nil {
		return FloatingIP{}, c.failGet
	}
	for _, f := range c.fips {
		if strconv.FormatInt(f.ID, 10) == idOrName || f.Name == idOrName {
			return *f, nil
		}
	}
	return FloatingIP{}, errors.New("not_found")
}

func (c *fakeCloud) ListFloatingIPs(ctx context.Context, selector string) ([]FloatingIP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	c.gets++
	if c.failGet != nil {
		return nil, c.failGet
	}
	var out []FloatingIP
	k, v, _ := strings.Cut(selector, "=")
	for _, f := range c.fips {
		if selector == "" || f.Labels[k] == v {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b FloatingIP) int { return int(a.ID - b.ID) })
	return out, nil
}

func (c *fakeCloud) Assign(ctx context.Context, fipID, serverID int64) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	c.assigns = append(c.assigns, fmt.Sprintf("%d->%d", fipID, serverID))
	c.assignAt = append(c.assignAt, time.Now())
	if c.failAssign != nil {
		return Action{}, c.failAssign
	}
	if _, ok := c.fips[fipID]; !ok {
		return Action{}, errors.New("not_found")
	}
	for _, a := range c.actions {
		if a.fip == fipID && !a.applied {
			return Action{}, errors.New("locked")
		}
	}
	c.nextAction++
	c.actions[c.nextAction] = &fakeAction{fip: fipID, server: serverID, done: time.Now().Add(c.latency), fail: c.failActions > 0}
	if c.failActions > 0 {
		c.failActions--
	}
	return Action{ID: c.nextAction, Status: "running"}, nil
}

func (c *fakeCloud) WaitAction(ctx context.Context, id int64) (Action, error) {
	c.mu.Lock()
	a, ok := c.actions[id]
	c.mu.Unlock()
	if !ok {
		return Action{}, errors.New("not_found")
	}
	select {
	case <-time.After(time.Until(a.done)):
	case <-ctx.Done():
		return Action{ID: id, Status: "running"}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	if a.fail {
		// As cloudapi: the failed action and an error.
		return Action{ID: id, Status: "error", ErrorCode: "action_failed", ErrorMessage: "action failed"}, errors.New("action_failed: action failed")
	}
	return Action{ID: id, Status: "success"}, nil
}

func (c *fakeCloud) holder(fipID int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	return c.fips[fipID].ServerID
}

// assignTimes returns when each Assign call arrived.
func (c *fakeCloud) assignTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.assignAt)
}

// firstAssignAt returns when the first Assign call arrived.
func (c *fakeCloud) firstAssignAt() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.assignAt) == 0 {
		return time.Time{}, false
	}
	return c.assignAt[0], true
}

func (c *fakeCloud) assignCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.assigns)
}

// fakeHost records the configured prefixes per owner.
type fakeHost struct {
	mu     sync.Mutex
	owners map[string][]netip.Prefix
	sets   int
}

func (h *fakeHost) Set(ctx context.Context, owner string, ps []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owners == nil {
		h.owners = map[string][]netip.Prefix{}
	}
	h.sets++
	h.owners[owner] = slices.Clone(ps)
	return nil
}

func (h *fakeHost) configured(owner string) []netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.owners[owner])
}

// hub is an in-memory failure detector shared by fake members. A member
// sees another alive while both are up and can reach each other, and for
// detect after that stopped (like memberlist's suspicion): a crash, pause or
// split shorter than detect is never noticed. While a peer is unreachable
// the observer keeps the peer's last state.
type hub struct {
	mu      sync.Mutex
	detect  time.Duration
	nodes   map[int64]*fakeMember
	blocked map[[2]int64]bool
	lost    map[[2]int64]lostPeer // observer, peer
	// frozen makes an observer see a peer's state as it was (gossip lag);
	// the peer stays alive (indirect probes still reach it).
	frozen map[[2]int64]LocalState
}

type lostPeer struct {
	at    time.Time
	state LocalState
}

type fakeMember struct {
	hub     *hub
	id      int64
	state   LocalState
	up      bool
	paused  bool
	left    bool
	changes chan struct{}
}

func newHub(detect time.Duration) *hub {
	return &hub{detect: detect, nodes: map[int64]*fakeMember{}, blocked: map[[2]int64]bool{}, lost: map[[2]int64]lostPeer{}, frozen: map[[2]int64]LocalState{}}
}

// join returns the member for id, up again if it existed (a restart).
func (h *hub) join(id int64) *fakeMember {
	h.change(func() {
		m, ok := h.nodes[id]
		if !ok {
			m = &fakeMember{hub: h, id: id, changes: make(chan struct{}, 1)}
			h.nodes[id] = m
		}
		m.up, m.left, m.paused = true, false, false
		m.state = LocalState{}
	})
	return h.nodes[id]
}

func (h *hub) reachable(a, b int64) bool {
	na, nb := h.nodes[a], h.nodes[b]
	return na.up && nb.up && !na.paused && !nb.paused && !nb.left && !h.blocked[[2]int64{a, b}]
}

// change applies f and records which pairs became unreachable, then
// notifies everybody now and once detection has run its course.
func (h *hub) change(f func()) {
	h.mu.Lock()
	before := map[[2]int64]bool{}
	for a := range h.nodes {
		for b := range h.nodes {
			before[[2]int64{a, b}] = h.reachable(a, b)
		}
	}
	f()
	now := time.Now()
	for a := range h.nodes {
		for b := range h.nodes {
			k := [2]int64{a, b}
			r := h.reachable(a, b)
			switch {
			case before[k] && !r:
				h.lost[k] = lostPeer{at: now, state: h.nodes[b].state}
			case r:
				delete(h.lost, k)
			}
		}
	}
	h.mu.Unlock()
	h.notifyAll()
	time.AfterFunc(h.detect, h.notifyAll)
}

func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.nodes {
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

func (h *hub) crash(id int64)             { h.change(func() { h.nodes[id].up = false }) }
func (h *hub) setPaused(id int64, p bool) { h.change(func() { h.nodes[id].paused = p }) }

// split cuts every link between the two sides.
func (h *hub) split(side1, side2 []int64) {
	h.change(func() {
		for _, a := range side1 {
			for _, b := range side2 {
				h.blocked[[2]int64{a, b}] = true
				h.blocked[[2]int64{b, a}] = true
			}
		}
	})
}

// freeze makes a and b see each other's current state until unfrozen.
func (h *hub) freeze(a, b int64, on bool) {
	h.change(func() {
		if on {
			h.frozen[[2]int64{a, b}] = h.nodes[b].state
			h.frozen[[2]int64{b, a}] = h.nodes[a].state
		} else {
			delete(h.frozen, [2]int64{a, b})
			delete(h.frozen, [2]int64{b, a})
		}
	})
}

func (m *fakeMember) Members() []Member {
	h := m.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	var out []Member
	for id, n := range h.nodes {
		if n.left && id != m.id {
			out = append(out, Member{ID: id, Left: true})
			continue
		}
		st := n.state
		if id != m.id && !h.reachable(m.id, id) {
			l, ok := h.lost[[2]int64{m.id, id}]
			if !ok || now.Sub(l.at) >= h.detect {
				continue
			}
			st = l.state
		}
		if f, ok := h.frozen[[2]int64{m.id, id}]; ok {
			st = f
		}
		out = append(out, Member{ID: id, Name: "node" + strconv.FormatInt(id, 10), Priority: st.Priority,
			Healthy: st.Healthy, Candidate: st.Candidate, Holding: st.Holding, Starting: !st.Ready, BackingOff: st.BackingOff,
			ReadDigest: st.ReadDigest})
	}
	return out
}

func (m *fakeMember) SetLocal(s LocalState) error {
	m.hub.mu.Lock()
	if !m.up {
		m.hub.mu.Unlock()
		return nil
	}
	m.state = s
	m.hub.mu.Unlock()
	m.hub.notifyAll()
	return nil
}

func (m *fakeMember) Changes() <-chan struct{} { return m.changes }

func (m *fakeMember) Leave(ctx context.Context) error {
	m.hub.change(func() {
		if m.up {
			m.left = true
			m.up = false
		}
	})
	return nil
}

// switchProbe is a probe whose result the test flips.
type switchProbe struct{ fail atomic.Bool }

func (p *switchProbe) probe(context.Context) error {
	if p.fail.Load() {
		return errors.New("service down")
	}
	return nil
}
