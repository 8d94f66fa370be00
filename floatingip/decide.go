package floatingip

import (
	"cmp"
	"slices"
	"time"
)

// Member is one member of a failover group as seen by this server.
type Member struct {
	// ID is the server ID (the metadata instance-id); it breaks ties.
	ID int64 `json:"id"`
	// Name is the member's node name or address, for humans.
	Name string `json:"name,omitempty"`
	// Addr is the member's gossip address (host:port).
	Addr string `json:"addr,omitempty"`
	// Priority is the configured priority; higher wins.
	Priority int `json:"priority"`
	// Alive reports whether failure detection considers the member alive.
	Alive bool `json:"alive"`
	// Healthy reports the member's own health check result.
	Healthy bool `json:"healthy"`
	// Candidate is false while the member hands over (planned shutdown) or
	// otherwise refuses to hold the floating IPs.
	Candidate bool `json:"candidate"`
	// Holding reports that the member claims to hold the group's floating IPs.
	Holding bool `json:"holding"`
	// Starting reports that the member (re)joined and has not published its
	// state yet: a starting holder keeps the floating IPs (agent restart).
	Starting bool `json:"starting,omitempty"`
	// BackingOff reports that the member waits after losing the floating
	// IPs or a failed move: it is not eligible meanwhile.
	BackingOff bool `json:"backing_off,omitempty"`
	// Left reports that the member left the group gracefully.
	Left bool `json:"left,omitempty"`
	// Since is when this server last saw the member become alive, healthy and
	// a candidate; it times the preemption delay.
	Since time.Time `json:"since,omitzero"`
	// ReadDigest is what the member advertises of its floating IP
	// manager's last read (LocalState.ReadDigest); only ReadShare uses it.
	ReadDigest ReadDigest `json:"-"`
}

// eligible reports whether m may hold the floating IPs.
func (m Member) eligible() bool {
	return m.Alive && !m.Starting && m.Healthy && m.Candidate && !m.BackingOff
}

// PeerState is the answer of the second path for groups of two members.
type PeerState int

// Peer states of the second path.
const (
	// PeerUnknown means the second path was not asked or failed.
	PeerUnknown PeerState = iota
	// PeerUp means the peer's server runs (or its service answers): it is
	// only cut off from us, so this side must not take over.
	PeerUp
	// PeerDown means the peer's server is off, gone, or its service is dead.
	PeerDown
)

// String returns the state's name.
func (s PeerState) String() string {
	switch s {
	case PeerUp:
		return "up"
	case PeerDown:
		return "down"
	default:
		return "unknown"
	}
}

// View is everything Decide needs: the shared view of one group at one moment.
type View struct {
	// Self is this server's ID.
	Self int64
	// Members are the members seen, including self. Members that failure
	// detection declared dead are present with Alive false, or absent.
	Members []Member
	// Holder is the server that holds the floating IPs, by the API or by a
	// newer gossip claim; 0 when unassigned.
	Holder int64
	// ExpectedSize is the number of members the group should have (configured
	// or discovered peers plus self).
	ExpectedSize int
	// Peer is the second path's verdict on the peer of a group of two.
	Peer PeerState
	// Preempt moves the floating IPs back to a better member that has been
	// eligible for PreemptDelay.
	Preempt      bool
	PreemptDelay time.Duration
	// Now is the time of the decision.
	Now time.Time
}

// Decision is the outcome of Decide.
type Decision struct {
	// Leader is the member that should hold the floating IPs; 0 if none is
	// eligible.
	Leader int64
	// Quorum reports whether this server may act on the decision (it sees a
	// majority, or the second path confirmed that the peer is down).
	Quorum bool
	// Reason says why, in a few words, for logs and status.
	Reason string
}

// Take reports whether this server should take the floating IPs now.
func (d Decision) Take(self int64) bool { return d.Quorum && d.Leader == self && self != 0 }

// Decide computes the role decision of one group. It is a pure function of
// the view, so every member that sees the same view decides the same:
//
//   - keep a holder that is alive, healthy and a candidate (no needless
//     moves), unless preemption is on and a better member has been eligible
//     for the preemption delay;
//   - otherwise the eligible member with the highest priority, ties broken by
//     the lowest server ID;
//   - act only with a majority of the expected group alive (self included);
//     a group of two that sees only itself acts only when the second path
//     says the peer is down.
func Decide(v View) Decision {
	var d Decision
	holder, best, alive := weigh(v)

	switch {
	case holder != nil && holder.Alive && holder.Starting:
		d.Leader, d.Reason = holder.ID, "keep starting holder"
	case holder != nil && holder.eligible():
		d.Leader, d.Reason = holder.ID, "keep healthy holder"
		if at, ok := preemptTime(v, holder, best); ok && !v.Now.Before(at) {
			d.Leader, d.Reason = best.ID, "preempt to higher priority"
		}
	case best != nil:
		d.Leader = best.ID
		switch {
		case v.Holder == 0:
			d.Reason = "unassigned: best eligible member"
		case holder == nil || !holder.Alive:
			d.Reason = "holder dead: best eligible member"
		default:
			d.Reason = "holder unhealthy: best eligible member"
		}
	default:
		d.Reason = "no eligible member"
	}

	expected := max(v.ExpectedSize, 1)
	switch {
	case alive*2 > expected:
		d.Quorum = true
	case expected == 2 && alive == 1 && v.Peer == PeerDown:
		d.Quorum = true
		d.Reason += " (peer down by second path)"
	default:
		d.Reason += " (no majority)"
	}
	return d
}

// weigh returns what Decide weighs in v: the holder (nil when unassigned
// or not among the members), the best eligible member (nil when none is
// eligible) and how many members are alive.
func weigh(v View) (holder, best *Member, alive int) {
	for i := range v.Members {
		m := &v.Members[i]
		if m.Alive {
			alive++
		}
		if m.ID == v.Holder && v.Holder != 0 {
			holder = m
		}
		if m.eligible() && (best == nil || better(*m, *best)) {
			best = m
		}
	}
	return holder, best, alive
}

// preemptTime returns when preemption from the eligible holder to best
// is due (best has then been eligible for PreemptDelay), and false when
// preemption is off or best would not preempt the holder at any time.
func preemptTime(v View, holder, best *Member) (time.Time, bool) {
	if !v.Preempt || best == nil || best.ID == holder.ID || best.Priority <= holder.Priority || best.Since.IsZero() {
		return time.Time{}, false
	}
	return best.Since.Add(v.PreemptDelay), true
}

// preemptDue returns when Decide's answer for v changes by time alone, to
// a preemption after the delay, and false when no such change lies ahead:
// the group loop wakes then instead of polling.
func preemptDue(v View) (time.Time, bool) {
	holder, best, _ := weigh(v)
	if holder == nil || !holder.eligible() {
		return time.Time{}, false
	}
	at, ok := preemptTime(v, holder, best)
	if !ok || !at.After(v.Now) {
		return time.Time{}, false
	}
	return at, true
}

// better reports whether a beats b: higher priority, then lower server ID.
func better(a, b Member) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.ID < b.ID
}

// sortMembers orders members by server ID, for stable output.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
}
