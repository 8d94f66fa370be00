package floatingip

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// One reader per group (issue 14, item 3): of the servers in a failover
// group only the holder's Manager lists the floating IPs every
// api.poll_interval. After each read it advertises a digest of what it
// read in the group's gossip (LocalState.ReadDigest). A standby's Manager
// makes no periodic read while it sees a holder that advertises a digest
// for the same label selector; it reads at start, on Trigger, and once
// whenever a holder advertises a new digest that differs from its own last
// read. So a floating IP assigned by hand to a standby is configured within
// one of the holder's poll intervals, and a group makes the same number of
// steady-state requests whatever its size.

// ReadDigest identifies the result of one read of the floating IPs:
// Selector is a hash of the label selector of the read, List a hash of the
// selector and of the ID, server and address of every floating IP listed.
// Two reads with the same List saw the same assignments; a different
// Selector means that the reads list different floating IPs, so one
// server cannot read for the other. The zero value is "no read".
type ReadDigest struct {
	Selector uint32
	List     uint64
}

// IsZero reports whether d is the zero digest (no read).
func (d ReadDigest) IsZero() bool { return d == ReadDigest{} }

// String is the gossip form "SSSSSSSS:LLLLLLLLLLLLLLLL" (lowercase hex),
// "" for the zero digest.
func (d ReadDigest) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%08x:%016x", d.Selector, d.List)
}

// ParseReadDigest parses String's form; "" is the zero digest. Peers may
// run other versions: anything else is an error (and advertises nothing).
func ParseReadDigest(s string) (ReadDigest, error) {
	if s == "" {
		return ReadDigest{}, nil
	}
	sel, list, ok := strings.Cut(s, ":")
	if !ok || len(sel) != 8 || len(list) != 16 || !isLowerHex(sel) || !isLowerHex(list) {
		return ReadDigest{}, fmt.Errorf("parse read digest %q: want 8 and 16 lowercase hex digits separated by a colon", s)
	}
	a, err1 := strconv.ParseUint(sel, 16, 32)
	b, err2 := strconv.ParseUint(list, 16, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ReadDigest{}, fmt.Errorf("parse read digest %q: %w", s, err)
	}
	d := ReadDigest{Selector: uint32(a), List: b}
	if d.IsZero() {
		// String never prints it: the zero digest is "".
		return ReadDigest{}, fmt.Errorf("parse read digest %q: the zero digest is written as no digest", s)
	}
	return d, nil
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// selectorHash is ReadDigest.Selector for a label selector.
func selectorHash(selector string) uint32 {
	h := sha256.Sum256([]byte("hc-agent floating ip selector\x00" + selector))
	return binary.BigEndian.Uint32(h[:4])
}

// digestOf is the digest of a read of the floating IPs for selector that
// listed fips (in any order).
func digestOf(selector string, fips []FloatingIP) ReadDigest {
	lines := make([]string, 0, len(fips))
	for _, f := range fips {
		lines = append(lines, fmt.Sprintf("%d %d %s\n", f.ID, f.ServerID, f.IP))
	}
	slices.Sort(lines)
	h := sha256.New()
	h.Write([]byte("hc-agent floating ip read\x00" + selector + "\x00"))
	for _, l := range lines {
		h.Write([]byte(l))
	}
	sum := h.Sum(nil)
	d := ReadDigest{Selector: selectorHash(selector), List: binary.BigEndian.Uint64(sum[:8])}
	if d.IsZero() {
		d.List = 1 // never "no read"
	}
	return d
}

// ReadShare connects this server's Manager with the memberships of its
// failover groups: the groups advertise the Manager's digest while they
// hold, and the Manager learns from them whether this server holds a
// group and what the holders it can see advertise. Build one per process
// (NewReadShare), give it to the Manager (ManagerConfig.Share) and wrap
// every group's membership with Membership. Its methods are safe for
// concurrent use.
type ReadShare struct {
	self int64

	mu      sync.Mutex
	own     ReadDigest
	members map[*sharedMembership]shareState
	changes chan struct{}
}

// shareState is what one group's membership told the share.
type shareState struct {
	holding bool
	holders []holderAdvert
}

// holderAdvert is another member that claims to hold a group, with the
// digest it advertises (zero: none).
type holderAdvert struct {
	id     int64
	digest ReadDigest
}

// NewReadShare returns the share of server self.
func NewReadShare(self int64) *ReadShare {
	return &ReadShare{self: self, members: map[*sharedMembership]shareState{}, changes: make(chan struct{}, 1)}
}

// Membership wraps a group's membership: while the group holds, what it
// advertises carries the Manager's last digest (re-advertised when a read
// changes it); what the group sees of the others tells the Manager whom it
// can follow. Leave ends the group's part in the share.
func (s *ReadShare) Membership(m Membership) Membership {
	w := &sharedMembership{Membership: m, s: s}
	s.mu.Lock()
	s.members[w] = shareState{}
	s.mu.Unlock()
	s.notify()
	return w
}

// setOwn records the digest of the Manager's last successful read and
// re-advertises it in the groups this server holds.
func (s *ReadShare) setOwn(d ReadDigest) {
	s.mu.Lock()
	changed := s.own != d
	s.own = d
	ws := make([]*sharedMembership, 0, len(s.members))
	for w := range s.members {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	for _, w := range ws {
		w.readvertise()
	}
}

func (s *ReadShare) ownDigest() ReadDigest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.own
}

// setHolding records whether the group of membership w holds, and wakes
// the Manager if that changed.
func (s *ReadShare) setHolding(w *sharedMembership, holding bool) {
	s.mu.Lock()
	st, ok := s.members[w]
	changed := ok && st.holding != holding
	if changed {
		st.holding = holding
		s.members[w] = st
	}
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// setHolders records the other holders that membership w sees, and wakes
// the Manager if they changed. The group looks at its members at every
// evaluation (each membership event): an unchanged view costs no
// allocation.
func (s *ReadShare) setHolders(w *sharedMembership, hs []holderAdvert) {
	s.mu.Lock()
	st, ok := s.members[w]
	changed := ok && !slices.Equal(st.holders, hs)
	if changed {
		st.holders = slices.Clone(hs)
		s.members[w] = st
	}
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

func (s *ReadShare) remove(w *sharedMembership) {
	s.mu.Lock()
	delete(s.members, w)
	s.mu.Unlock()
	s.notify()
}

func (s *ReadShare) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// shareView is the groups' state as the Manager decides on it.
type shareView struct {
	groups  int  // memberships of this server's groups
	holding bool // this server holds at least one group
	// holders are the other members that hold a group, by ID (one entry
	// per member, the first digest it advertises).
	holders []holderAdvert
}

func (s *ReadShare) view() shareView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := shareView{groups: len(s.members)}
	seen := map[int64]bool{}
	for _, st := range s.members {
		v.holding = v.holding || st.holding
		for _, h := range st.holders {
			if !seen[h.id] {
				seen[h.id] = true
				v.holders = append(v.holders, h)
			}
		}
	}
	slices.SortFunc(v.holders, func(a, b holderAdvert) int { return cmp.Compare(a.id, b.id) })
	return v
}

// sharedMembership is a group's Membership as ReadShare wraps it.
type sharedMembership struct {
	Membership
	s *ReadShare

	// mu serialises SetLocal and readvertise, so that an older state
	// never overtakes a newer one.
	mu   sync.Mutex
	last LocalState
	set  bool
}

// SetLocal advertises st, with the Manager's digest while st holds.
func (w *sharedMembership) SetLocal(st LocalState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last, w.set = st, true
	err := w.Membership.SetLocal(w.withDigest(st))
	w.s.setHolding(w, st.Holding)
	return err
}

func (w *sharedMembership) withDigest(st LocalState) LocalState {
	st.ReadDigest = ReadDigest{}
	if st.Holding {
		st.ReadDigest = w.s.ownDigest()
	}
	return st
}

// readvertise sends the last state again with the new digest, when the
// group holds (a standby advertises no digest).
func (w *sharedMembership) readvertise() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.set || !w.last.Holding {
		return
	}
	// SetLocal is non-blocking (Gossip publishes in the background); an
	// error here would repeat at the group's next SetLocal, which logs it.
	_ = w.Membership.SetLocal(w.withDigest(w.last))
}

// Members returns the membership's members and notes the other members
// that hold the group, with their digests. The group calls it at every
// evaluation, so the share follows every change the group sees.
func (w *sharedMembership) Members() []Member {
	ms := w.Membership.Members()
	var buf [8]holderAdvert // usually one holder: no allocation
	hs := buf[:0]
	for _, m := range ms {
		if m.Left || !m.Holding || m.ID == w.s.self {
			continue
		}
		hs = append(hs, holderAdvert{id: m.ID, digest: m.ReadDigest})
	}
	slices.SortFunc(hs, func(a, b holderAdvert) int { return cmp.Compare(a.id, b.id) })
	w.s.setHolders(w, hs)
	return ms
}

// DecryptFailures passes on the wrapped membership's report of messages
// that did not decrypt (*Gossip), for the group's status.
func (w *sharedMembership) DecryptFailures() (peers []string, last time.Time) {
	if dr, ok := w.Membership.(decryptReporter); ok {
		return dr.DecryptFailures()
	}
	return nil, time.Time{}
}

// Unwrap returns the wrapped membership (reload changes a *Gossip's keys
// and peers in place).
func (w *sharedMembership) Unwrap() Membership { return w.Membership }

// Leave leaves the group and ends its part in the share.
func (w *sharedMembership) Leave(ctx context.Context) error {
	err := w.Membership.Leave(ctx)
	w.s.remove(w)
	return err
}

// ReadMode is how the Manager schedules its reads of the floating IPs.
type ReadMode string

const (
	// ReadModeReader reads every jittered interval: a server without
	// groups, a holder, or a standby that has no holder to follow.
	ReadModeReader ReadMode = "reader"
	// ReadModeFollower makes no periodic read: a standby that follows the
	// digests its groups' holders advertise.
	ReadModeFollower ReadMode = "follower"
)

// Why a Manager reads periodically (or follows); logged on change.
const (
	readWhyNoGroup      = "no failover group"
	readWhyHolding      = "this server holds a group"
	readWhyNoHolder     = "no holder visible in the groups"
	readWhyNoDigest     = "the holder advertises no read digest"
	readWhyOtherSelect  = "the holder reads another label selector"
	readWhyFollowHolder = "the holder reads for this server"
)

// decideRead is the Manager's read mode for a view of its groups: follow
// (no periodic read) only when this server is in a group, holds none, and
// sees a holder that advertises a digest of a read with the same label
// selector (sel is its hash). follow are those holders.
func decideRead(v shareView, sel uint32) (mode ReadMode, why string, follow []holderAdvert) {
	switch {
	case v.groups == 0:
		return ReadModeReader, readWhyNoGroup, nil
	case v.holding:
		return ReadModeReader, readWhyHolding, nil
	case len(v.holders) == 0:
		return ReadModeReader, readWhyNoHolder, nil
	}
	why = readWhyNoDigest
	for _, h := range v.holders {
		switch {
		case h.digest.IsZero():
		case h.digest.Selector != sel:
			why = readWhyOtherSelect
		default:
			follow = append(follow, h)
		}
	}
	if len(follow) == 0 {
		return ReadModeReader, why, nil
	}
	return ReadModeFollower, readWhyFollowHolder, follow
}

// follower is the Manager's memory of the holders' adverts: a read is due
// when a holder advertises a digest it did not advertise at the last look
// and that differs from the Manager's own last read. A standing difference
// (the two reads fell on different sides of a change) causes no further
// read: only the holder's next read can.
type follower struct {
	seen map[int64]ReadDigest
}

// due records follow and reports whether one of them is news that the
// Manager's own last read (own) did not see.
func (f *follower) due(follow []holderAdvert, own ReadDigest) bool {
	if f.seen == nil {
		f.seen = map[int64]ReadDigest{}
	}
	due := false
	for _, h := range follow {
		if prev, ok := f.seen[h.id]; (!ok || prev != h.digest) && h.digest != own {
			due = true
		}
		f.seen[h.id] = h.digest
	}
	return due
}
