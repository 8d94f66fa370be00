package floatingip

import (
	"strconv"
	"strings"
	"time"
)

// Status is the JSON-serialisable state of a group.
type Status struct {
	Name    string `json:"name"`
	Mode    string `json:"mode"`
	Self    int64  `json:"self"`
	Role    Role   `json:"role"`
	Healthy bool   `json:"healthy"`
	// Drained reports that Drain (hc-agent handover) took this member out
	// of candidacy until Resume.
	Drained     bool        `json:"drained"`
	Decision    string      `json:"decision,omitempty"`
	Members     []Member    `json:"members"`
	FloatingIPs []FIPStatus `json:"floating_ips"`
	// Kind is the kind of the addresses listed in FloatingIPs.
	Kind            AddressKind `json:"kind,omitempty"`
	LastMove        *MoveRecord `json:"last_move,omitempty"`
	MovesLastMinute int         `json:"moves_last_minute"`
	BackoffUntil    time.Time   `json:"backoff_until,omitzero"`
	SecondPath      string      `json:"second_path,omitempty"`
	// Gossip explains a membership problem, such as peers whose packets do
	// not decrypt with our key; empty when there is none.
	Gossip string `json:"gossip,omitempty"`
}

// decryptReporter is implemented by a Membership that can tell about
// messages it could not decrypt (*Gossip).
type decryptReporter interface {
	DecryptFailures() (peers []string, last time.Time)
}

// decryptRecent is how long after the last undecryptable message Status
// still blames the key for seeing no peers.
const decryptRecent = 30 * time.Second

// gossipProblemLocked explains why no peer is seen when their messages do
// not decrypt. g.mu must be held.
func (g *Group) gossipProblemLocked(now time.Time) string {
	dr, ok := g.deps.Membership.(decryptReporter)
	if !ok {
		return ""
	}
	for id, m := range g.seen {
		if id != g.cfg.Self && m.Alive {
			return ""
		}
	}
	peers, last := dr.DecryptFailures()
	if last.IsZero() || now.Sub(last) > decryptRecent {
		return ""
	}
	return "no peers: messages from " + strings.Join(peers, ", ") + " do not decrypt with our key (gossip key mismatch)"
}

// FIPStatus is one floating IP in Status.
type FIPStatus = AddressStatus

// AddressStatus is one address of a group in Status.
type AddressStatus struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	IP   string `json:"ip"`
	// HolderByAPI is the server the API assigned it to when read at ReadAt.
	HolderByAPI int64     `json:"holder_by_api"`
	ReadAt      time.Time `json:"read_at"`
	// HolderByView is the holder by this member's view (API or gossip claim).
	HolderByView int64 `json:"holder_by_view"`
	// ConfiguredHere reports whether the address is configured on this server.
	ConfiguredHere bool `json:"configured_here"`
	// Kind is the address's kind, set by private VIP handlers and by
	// Handlers (a group of several kinds).
	Kind AddressKind `json:"kind,omitempty"`
}

// Status returns a snapshot of the group's state. It is safe to call from
// any goroutine.
func (g *Group) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	s := Status{
		Name: g.cfg.Name, Mode: g.cfg.Mode, Self: g.cfg.Self, Role: g.role, Healthy: g.healthy,
		Decision: g.decision.Reason, BackoffUntil: g.backoffUntil, Kind: g.handler.Kind(), Drained: g.drained,
	}
	if s.BackoffUntil.Before(now) {
		s.BackoffUntil = time.Time{}
	}
	for _, m := range g.seen {
		s.Members = append(s.Members, m)
	}
	sortMembers(s.Members)
	for _, a := range g.handler.Status() {
		a.HolderByView = g.knownHolder
		s.FloatingIPs = append(s.FloatingIPs, a)
	}
	if g.lastMove != nil {
		m := *g.lastMove
		s.LastMove = &m
	}
	for _, t := range g.moves {
		if now.Sub(t) < time.Minute {
			s.MovesLastMinute++
		}
	}
	s.Gossip = g.gossipProblemLocked(now)
	if g.peerStateFor != 0 {
		s.SecondPath = "peer " + strconv.FormatInt(g.peerStateFor, 10) + " " + g.peerState.String()
	}
	return s
}
