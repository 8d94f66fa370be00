package floatingip

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReadDigest(t *testing.T) {
	tests := []struct {
		in      string
		want    ReadDigest
		wantErr bool
	}{
		{"", ReadDigest{}, false},
		{"0000002a:00000000000000ff", ReadDigest{Selector: 42, List: 255}, false},
		{"ffffffff:ffffffffffffffff", ReadDigest{Selector: 1<<32 - 1, List: 1<<64 - 1}, false},
		{"0000002A:00000000000000ff", ReadDigest{}, true}, // upper case is not String's form
		{"00000000:0000000000000000", ReadDigest{}, true}, // the zero digest is ""
		{"0000002a00000000000000ff", ReadDigest{}, true},
		{"2a:ff", ReadDigest{}, true},
		{"0000002a:00000000000000ff:", ReadDigest{}, true},
		{"+000002a:00000000000000ff", ReadDigest{}, true},
		{" 000002a:00000000000000ff", ReadDigest{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReadDigest(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
		})
	}
}

// FuzzParseReadDigest: no panic, and what parses prints back to the same
// text and parses to the same digest.
func FuzzParseReadDigest(f *testing.F) {
	for _, s := range []string{"", "0000002a:00000000000000ff", "ffffffff:ffffffffffffffff", "2a:ff", "x", "0000002A:00000000000000ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseReadDigest(s)
		if err != nil {
			assert.True(t, d.IsZero())
			return
		}
		assert.Equal(t, s, d.String())
		again, err := ParseReadDigest(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, again)
	})
}

func TestDigestOf(t *testing.T) {
	a := FloatingIP{ID: 1, IP: netip.MustParseAddr("203.0.113.1"), ServerID: 7}
	b := FloatingIP{ID: 2, IP: netip.MustParseAddr("203.0.113.2"), ServerID: 8}
	moved := b
	moved.ServerID = 7
	base := digestOf("", []FloatingIP{a, b})
	tests := []struct {
		name     string
		selector string
		fips     []FloatingIP
		same     bool
	}{
		{"same read", "", []FloatingIP{a, b}, true},
		{"order does not matter", "", []FloatingIP{b, a}, true},
		{"labels and names do not matter", "", []FloatingIP{{ID: 1, Name: "x", IP: a.IP, ServerID: 7, Labels: map[string]string{"k": "v"}}, b}, true},
		{"an assignment changed", "", []FloatingIP{a, moved}, false},
		{"a floating ip more", "", []FloatingIP{a}, false},
		{"another selector", "role=web", []FloatingIP{a, b}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := digestOf(tt.selector, tt.fips)
			assert.False(t, d.IsZero())
			assert.Equal(t, tt.same, d == base, "%v vs %v", d, base)
			assert.Equal(t, selectorHash(tt.selector), d.Selector)
		})
	}
	assert.False(t, digestOf("", nil).IsZero(), "an empty list is a read too")
}

func TestDecideRead(t *testing.T) {
	sel := selectorHash("")
	good := ReadDigest{Selector: sel, List: 9}
	other := ReadDigest{Selector: selectorHash("role=db"), List: 9}
	tests := []struct {
		name       string
		v          shareView
		wantMode   ReadMode
		wantWhy    string
		wantFollow []int64
	}{
		{"no group", shareView{}, ReadModeReader, readWhyNoGroup, nil},
		{"holds a group", shareView{groups: 2, holding: true, holders: []holderAdvert{{2, good}}}, ReadModeReader, readWhyHolding, nil},
		{"no holder", shareView{groups: 1}, ReadModeReader, readWhyNoHolder, nil},
		{"holder without digest", shareView{groups: 1, holders: []holderAdvert{{2, ReadDigest{}}}}, ReadModeReader, readWhyNoDigest, nil},
		{"holder with another selector", shareView{groups: 1, holders: []holderAdvert{{2, other}}}, ReadModeReader, readWhyOtherSelect, nil},
		{"holder to follow", shareView{groups: 1, holders: []holderAdvert{{2, good}}}, ReadModeFollower, readWhyFollowHolder, []int64{2}},
		{"one of two holders to follow", shareView{groups: 2, holders: []holderAdvert{{2, other}, {3, good}}}, ReadModeFollower, readWhyFollowHolder, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, why, follow := decideRead(tt.v, sel)
			assert.Equal(t, tt.wantMode, mode)
			assert.Equal(t, tt.wantWhy, why)
			var ids []int64
			for _, h := range follow {
				ids = append(ids, h.id)
			}
			assert.Equal(t, tt.wantFollow, ids)
		})
	}
}

// TestFollowerDue: a read is due for news only, never for a standing
// difference.
func TestFollowerDue(t *testing.T) {
	d := func(n uint64) ReadDigest { return ReadDigest{Selector: 1, List: n} }
	steps := []struct {
		name   string
		follow []holderAdvert
		own    ReadDigest
		want   bool
	}{
		{"first sight, same as ours", []holderAdvert{{1, d(1)}}, d(1), false},
		{"holder read something new", []holderAdvert{{1, d(2)}}, d(1), true},
		{"still the same advert after our read", []holderAdvert{{1, d(2)}}, d(2), false},
		{"we read more than the holder: standing difference", []holderAdvert{{1, d(2)}}, d(3), false},
		{"the holder catches up to us", []holderAdvert{{1, d(3)}}, d(3), false},
		{"a new holder with an older read", []holderAdvert{{1, d(3)}, {4, d(2)}}, d(3), true},
		{"both unchanged", []holderAdvert{{1, d(3)}, {4, d(2)}}, d(3), false},
	}
	var f follower
	for _, s := range steps {
		assert.Equal(t, s.want, f.due(s.follow, s.own), s.name)
	}
}

// TestGossipMetaReadDigest: the digest rides in version 1 of the node
// metadata; members of older versions decode new metadata as before and
// advertise none (the standbys then read periodically).
func TestGossipMetaReadDigest(t *testing.T) {
	// oldMeta is gossipMeta as it was before the digest.
	type oldMeta struct {
		V int    `json:"v"`
		P int    `json:"p"`
		R bool   `json:"r,omitempty"`
		H bool   `json:"h,omitempty"`
		C bool   `json:"c,omitempty"`
		O bool   `json:"o,omitempty"`
		B bool   `json:"b,omitempty"`
		N string `json:"n,omitempty"`
		L bool   `json:"l,omitempty"`
	}
	d := ReadDigest{Selector: 0xabc, List: 0x123}
	var g Gossip
	g.update = make(chan struct{}, 1)
	g.cfg.Hostname = "srv1"
	st := LocalState{Ready: true, Priority: 150, Healthy: true, Candidate: true, Holding: true, ReadDigest: d}
	require.NoError(t, g.SetLocal(st))

	var old oldMeta
	require.NoError(t, json.Unmarshal(g.meta, &old), "an older member decodes the new metadata")
	assert.Equal(t, oldMeta{V: 1, P: 150, R: true, H: true, C: true, O: true, N: "srv1"}, old)

	m, ok := memberOf(&memberlist.Node{Name: "1", Meta: g.meta})
	require.True(t, ok)
	assert.Equal(t, d, m.ReadDigest)
	assert.True(t, m.Holding)

	oldBytes, err := json.Marshal(old)
	require.NoError(t, err)
	m, ok = memberOf(&memberlist.Node{Name: "1", Meta: oldBytes})
	require.True(t, ok)
	assert.True(t, m.ReadDigest.IsZero(), "an older member advertises no digest")
	assert.True(t, m.Holding)

	m, ok = memberOf(&memberlist.Node{Name: "1", Meta: []byte(`{"v":1,"o":true,"d":"not a digest"}`)})
	require.True(t, ok)
	assert.True(t, m.ReadDigest.IsZero(), "a malformed digest is none")

	require.NoError(t, g.SetLocal(LocalState{Ready: true}))
	assert.NotContains(t, string(g.meta), `"d"`, "no digest, no key")
}

// followRig is one standby (server 2) whose Manager follows what a fake
// holder (server 1) advertises; the test plays the holder and calls the
// standby group's Members as the group's evaluation would.
type followRig struct {
	hub    *hub
	share  *ReadShare
	w      Membership
	holder *fakeMember
	cloud  *mgrCloud
	host   *fakeHost
	m      *Manager
	logs   *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

const followInterval = 20 * time.Minute

var (
	followA = FloatingIP{ID: 11, Name: "a", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.11"), ServerID: 1}
	followB = FloatingIP{ID: 12, Name: "b", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.12"), ServerID: 3}
)

func newFollowRig(t *testing.T) *followRig {
	r := &followRig{hub: newHub(detect), share: NewReadShare(2), cloud: &mgrCloud{}, host: &fakeHost{}, logs: &lockedBuffer{}}
	r.cloud.set(nil, followA, followB)
	r.holder = r.hub.join(1)
	r.w = r.share.Membership(r.hub.join(2))
	require.NoError(t, r.w.SetLocal(LocalState{Ready: true, Priority: 100, Healthy: true, Candidate: true}))
	r.advertise(digestOf("", []FloatingIP{followA, followB}))
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	r.m = newTestManager(t, ManagerConfig{Self: 2, IPv6Host: testIPv6Host, Interval: followInterval, Share: r.share}, r.cloud, r.host, log)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.m.Run(ctx) }()
	t.Cleanup(func() {
		r.cancel()
		require.NoError(t, <-r.done)
	})
	synctest.Wait()
	return r
}

// advertise makes the holder claim the group with digest d (zero: none)
// and lets the standby's group look at its members.
func (r *followRig) advertise(d ReadDigest) {
	_ = r.holder.SetLocal(LocalState{Ready: true, Priority: 150, Healthy: true, Candidate: true, Holding: true, ReadDigest: d})
	r.look()
}

// look is the standby group's evaluation: it reads the members.
func (r *followRig) look() {
	r.w.Members()
	synctest.Wait()
}

func (r *followRig) reads() int { return len(r.cloud.callTimes(time.Time{})) }

// TestManagerFollower checks the one-reader rule for the floating IP
// manager (issue 14, item 3): a standby's manager makes no periodic read
// while it follows a holder, reads exactly once when the holder's digest
// changes to one it has not read, never for a standing difference, and
// configures what it read.
func TestManagerFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newFollowRig(t)
		assert.Equal(t, 1, r.reads(), "the start read")

		time.Sleep(10 * followInterval)
		assert.Equal(t, 1, r.reads(), "a follower makes no periodic read")

		// The operator assigns b to this standby; the holder's next read
		// sees it and advertises a new digest.
		moved := followB
		moved.ServerID = 2
		r.cloud.set(nil, followA, moved)
		newer := digestOf("", []FloatingIP{followA, moved})
		r.advertise(newer)
		assert.Equal(t, 2, r.reads(), "one read for the new digest")
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.12/32")}, r.host.configured(ManagerOwner))

		r.advertise(newer)
		r.look()
		time.Sleep(3 * followInterval)
		assert.Equal(t, 2, r.reads(), "no read while the digest stays the same")

		// This server reads more than the holder (a trigger after another
		// change): the holder's older digest is no reason to read, and
		// neither is the holder catching up.
		r.cloud.set(nil, followA)
		r.m.Trigger()
		synctest.Wait()
		assert.Equal(t, 3, r.reads())
		assert.Empty(t, r.host.configured(ManagerOwner))
		time.Sleep(3 * followInterval)
		r.advertise(digestOf("", []FloatingIP{followA}))
		time.Sleep(3 * followInterval)
		assert.Equal(t, 3, r.reads(), "a standing difference causes no read")
		assert.Equal(t, 1, r.logs.count("floating ip reads follow the group holder"))
		assert.Zero(t, r.logs.count("floating ip reads every poll interval"))
	})
}

// TestManagerFollowerFallback: a standby reads every interval when it has
// no holder to follow, and logs why once.
func TestManagerFollowerFallback(t *testing.T) {
	tests := []struct {
		name string
		lose func(r *followRig)
		why  string
	}{
		{"holder advertises no digest", func(r *followRig) { r.advertise(ReadDigest{}) }, readWhyNoDigest},
		{"holder reads another selector", func(r *followRig) {
			r.advertise(ReadDigest{Selector: selectorHash("role=db"), List: 5})
		}, readWhyOtherSelect},
		{"holder gone", func(r *followRig) {
			r.hub.crash(1)
			time.Sleep(detect)
			r.look()
		}, readWhyNoHolder},
		{"this server holds", func(r *followRig) {
			require.NoError(t, r.w.SetLocal(LocalState{Ready: true, Priority: 100, Healthy: true, Candidate: true, Holding: true}))
			synctest.Wait()
		}, readWhyHolding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newFollowRig(t)
				time.Sleep(2 * followInterval)
				require.Equal(t, 1, r.reads())
				lostAt := time.Now()
				tt.lose(r)
				// A standby's view changes often in a failover; the
				// first periodic read is an interval after the change,
				// not at once.
				assert.Equal(t, 1, r.reads(), "no read at the change itself")
				for range 5 {
					r.look() // the group's evaluations repeat the view
				}
				time.Sleep(10 * followInterval)
				calls := r.cloud.callTimes(lostAt)[1:]
				// ±20% jitter: 8 to 12 reads in ten mean intervals.
				assert.GreaterOrEqual(t, len(calls), 8)
				assert.LessOrEqual(t, len(calls), 13)
				assert.GreaterOrEqual(t, calls[0], followInterval*8/10, "first read an interval after the change")
				assert.Equal(t, 1, r.logs.count("floating ip reads every poll interval"), "logged once")
				assert.Equal(t, 1, r.logs.count(fmt.Sprintf("reason=%q", tt.why)))
			})
		})
	}
}

// TestManagerHolderAdvertises: the group a server holds carries its
// manager's digest, updated after each read that changes it; a standby
// advertises none.
func TestManagerHolderAdvertises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newFollowRig(t)
		self := r.hub.nodes[2]
		own := func() ReadDigest {
			r.hub.mu.Lock()
			defer r.hub.mu.Unlock()
			return self.state.ReadDigest
		}
		assert.True(t, own().IsZero(), "a standby advertises no digest")
		require.NoError(t, r.w.SetLocal(LocalState{Ready: true, Holding: true}))
		assert.Equal(t, digestOf("", []FloatingIP{followA, followB}), own())

		r.cloud.set(nil, followA)
		time.Sleep(followInterval * 12 / 10)
		assert.Equal(t, 2, r.reads(), "the holder reads every interval")
		assert.Equal(t, digestOf("", []FloatingIP{followA}), own(), "re-advertised after the read")

		require.NoError(t, r.w.SetLocal(LocalState{Ready: true}))
		assert.True(t, own().IsZero(), "no digest after stepping down")
	})
}

// TestManagerNoGroupKeepsReading: a server whose share has no group reads
// every interval, as without a share.
func TestManagerNoGroupKeepsReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cloud := &mgrCloud{}
		cloud.set(nil, followA)
		var modes []ReadMode
		m := newTestManager(t, ManagerConfig{Self: 2, Interval: followInterval, Share: NewReadShare(2),
			OnMode: func(mode ReadMode, _ string) { modes = append(modes, mode) }}, cloud, &fakeHost{}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.Run(ctx) }()
		time.Sleep(10 * followInterval)
		n := len(cloud.callTimes(time.Time{})) - 1
		assert.GreaterOrEqual(t, n, 8)
		assert.LessOrEqual(t, n, 13)
		cancel()
		require.NoError(t, <-done)
		assert.Equal(t, []ReadMode{ReadModeReader}, modes)
	})
}

// TestManagerOneReader extends TestGroupOneReader with every member's
// floating IP manager: in a settled group of 2, 3 or 5 only the holder
// reads, so the group's API use is the holder's whatever its size.
func TestManagerOneReader(t *testing.T) {
	const refresh = 10 * time.Second
	const interval = time.Minute
	for _, prios := range [][]int{{200, 150}, {200, 150, 120}, {200, 150, 120, 110, 100}} {
		t.Run(fmt.Sprintf("group of %d", len(prios)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shares := map[int64]*ReadShare{}
				mreads := map[int64]*atomic.Int64{}
				for i := range prios {
					id := int64(i + 1)
					shares[id], mreads[id] = NewReadShare(id), &atomic.Int64{}
				}
				other := FloatingIP{ID: 2, Name: "other", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.20"), ServerID: 9}
				c := newClusterWith(t, func(c *cluster) {
					c.cfgHook = func(cfg *GroupConfig) { cfg.RefreshInterval = refresh }
					c.share = func(id int64) *ReadShare { return shares[id] }
					c.cloud.fips[other.ID] = &other
				}, 1, prios...)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for id, n := range c.nodes {
					m := newTestManager(t, ManagerConfig{Self: id, IPv6Host: testIPv6Host, Interval: interval, Share: shares[id],
						Exclude: func(f FloatingIP) bool { return f.ID == fipID }}, countingCloud{Cloud: c.cloud, reads: mreads[id]}, n.host, nil)
					wg.Go(func() { _ = m.Run(ctx) })
				}
				t.Cleanup(func() { cancel(); wg.Wait() })

				time.Sleep(5 * time.Second) // settled: every start-up read done
				before := map[int64][2]int64{}
				for id, n := range c.nodes {
					before[id] = [2]int64{n.reads.Load(), mreads[id].Load()}
				}
				time.Sleep(10 * interval)
				standbys := int64(0)
				for id, n := range c.nodes {
					group, mgr := n.reads.Load()-before[id][0], mreads[id].Load()-before[id][1]
					if id == 1 {
						assert.GreaterOrEqual(t, mgr, int64(8), "holder's manager reads")
						assert.LessOrEqual(t, mgr, int64(13), "holder's manager reads")
						continue
					}
					standbys += group + mgr
				}
				assert.Zero(t, standbys, "standbys make no periodic request")

				// The operator assigns the other floating IP to the last
				// standby: it is configured after the holder's next
				// read, with one read by each standby.
				last := int64(len(prios))
				c.cloud.mu.Lock()
				c.cloud.fips[other.ID].ServerID = last
				c.cloud.mu.Unlock()
				for id := range c.nodes {
					before[id] = [2]int64{0, mreads[id].Load()}
				}
				time.Sleep(interval * 12 / 10)
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.20/32")}, c.nodes[last].host.configured(ManagerOwner))
				for id := range c.nodes {
					if id != 1 {
						assert.Equal(t, int64(1), mreads[id].Load()-before[id][1], "standby %d reads once", id)
					}
				}
			})
		})
	}
}
