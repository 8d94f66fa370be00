package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestApplierFake runs the FloatingIPApplier against the fake netlink: each case
// starts from addresses on the NIC (configured by someone else) and an
// ownership record, makes Set calls and checks the addresses, the netlink
// writes and the record.
func TestApplierFake(t *testing.T) {
	type step struct {
		owner   string
		set     []string
		wantErr string
	}
	tests := []struct {
		name       string
		before     []string            // on eth0
		eth1       []string            // on the private NIC
		owned      map[string][]string // record at start
		noPublic   bool                // no 96: MAC: find the NIC by the default route
		steps      []step
		want       []string
		wantWrites int
		wantOwned  map[string][]string
		// wantSaved says the record changed, so the file was written.
		wantSaved bool
	}{
		{
			name:       "add ipv4 as /32",
			steps:      []step{{owner: "manager", set: []string{"203.0.113.1/32"}}},
			want:       []string{"eth0 203.0.113.1/32"},
			wantWrites: 1,
			wantOwned:  map[string][]string{"manager": {"203.0.113.1/32"}},
			wantSaved:  true,
		},
		{
			name:       "add ipv6 as /64 without duplicate address detection",
			steps:      []step{{owner: "manager", set: []string{"2001:db8:1:2::1/64"}}},
			want:       []string{"eth0 2001:db8:1:2::1/64 nodad"},
			wantWrites: 1,
			wantOwned:  map[string][]string{"manager": {"2001:db8:1:2::1/64"}},
			wantSaved:  true,
		},
		{
			name:       "unchanged makes zero writes",
			before:     []string{"203.0.113.1/32", "2001:db8:1:2::1/64 nodad"},
			owned:      map[string][]string{"manager": {"2001:db8:1:2::1/64", "203.0.113.1/32"}},
			steps:      []step{{owner: "manager", set: []string{"2001:db8:1:2::1/64", "203.0.113.1/32"}}},
			want:       []string{"eth0 2001:db8:1:2::1/64 nodad", "eth0 203.0.113.1/32"},
			wantWrites: 0,
			wantOwned:  map[string][]string{"manager": {"2001:db8:1:2::1/64", "203.0.113.1/32"}},
		},
		{
			name:       "removes only owned addresses",
			before:     []string{"203.0.113.1/32", "203.0.113.2/32", "198.51.100.9/32"},
			owned:      map[string][]string{"manager": {"203.0.113.1/32", "203.0.113.2/32"}},
			steps:      []step{{owner: "manager", set: []string{"203.0.113.2/32"}}},
			want:       []string{"eth0 198.51.100.9/32", "eth0 203.0.113.2/32"},
			wantWrites: 1,
			wantOwned:  map[string][]string{"manager": {"203.0.113.2/32"}},
			wantSaved:  true,
		},
		{
			name:   "foreign address is neither claimed nor removed",
			before: []string{"198.51.100.9/32"},
			eth1:   []string{"10.0.0.2/32"},
			steps: []step{
				{owner: "manager", set: []string{"198.51.100.9/32"}},
				{owner: "manager", set: nil},
			},
			want:       []string{"eth0 198.51.100.9/32", "eth1 10.0.0.2/32"},
			wantWrites: 0,
			wantOwned:  map[string][]string{},
		},
		{
			name:       "restores an owned address someone deleted",
			owned:      map[string][]string{"manager": {"2001:db8:1:2::1/64", "203.0.113.1/32"}},
			before:     []string{"2001:db8:1:2::1/64 nodad"},
			steps:      []step{{owner: "manager", set: []string{"2001:db8:1:2::1/64", "203.0.113.1/32"}}},
			want:       []string{"eth0 2001:db8:1:2::1/64 nodad", "eth0 203.0.113.1/32"},
			wantWrites: 1,
			wantOwned:  map[string][]string{"manager": {"2001:db8:1:2::1/64", "203.0.113.1/32"}},
		},
		{
			name:       "owned address already gone is forgotten without a write",
			owned:      map[string][]string{"manager": {"203.0.113.1/32"}},
			steps:      []step{{owner: "manager", set: nil}},
			wantWrites: 0,
			wantOwned:  map[string][]string{},
			wantSaved:  true,
		},
		{
			name:   "shared address stays while another owner wants it",
			before: []string{"203.0.113.1/32"},
			owned:  map[string][]string{"group:web": {"203.0.113.1/32"}},
			steps: []step{
				{owner: "manager", set: []string{"203.0.113.1/32"}},
				{owner: "manager", set: nil},
			},
			want:       []string{"eth0 203.0.113.1/32"},
			wantWrites: 0,
			wantOwned:  map[string][]string{"group:web": {"203.0.113.1/32"}},
			wantSaved:  true,
		},
		{
			name:       "last owner removes a shared address",
			before:     []string{"203.0.113.1/32"},
			owned:      map[string][]string{"group:web": {"203.0.113.1/32"}, "manager": {"203.0.113.1/32"}},
			steps:      []step{{owner: "manager", set: nil}, {owner: "group:web", set: nil}},
			wantWrites: 1,
			wantOwned:  map[string][]string{},
			wantSaved:  true,
		},
		{
			name:       "public nic by the default route without a 96: mac",
			noPublic:   true,
			steps:      []step{{owner: "manager", set: []string{"203.0.113.1/32"}}},
			want:       []string{"eth1 203.0.113.1/32"},
			wantWrites: 1,
			wantOwned:  map[string][]string{"manager": {"203.0.113.1/32"}},
			wantSaved:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nl := newFIPNL(!tc.noPublic)
			for _, s := range tc.before {
				nl.addAddr("eth0", s)
			}
			for _, s := range tc.eth1 {
				nl.addAddr("eth1", s)
			}
			state := writeRecord(t, tc.owned)
			a, err := NewFloatingIPApplier(nl, state, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			// The record is loaded; without it a write shows.
			require.NoError(t, os.RemoveAll(state))
			for _, st := range tc.steps {
				err := a.Set(t.Context(), st.owner, prefixes(st.set...))
				if st.wantErr != "" {
					assert.ErrorContains(t, err, st.wantErr)
				} else {
					require.NoError(t, err)
				}
			}
			assert.Equal(t, tc.want, nl.addrState())
			assert.Equal(t, tc.wantWrites, nl.writeCount(), "netlink writes")
			got := map[string][]string{}
			for o := range tc.wantOwned {
				got[o] = a.Owned(o)
			}
			for _, o := range []string{"manager", "group:web"} {
				if ps := a.Owned(o); len(ps) > 0 {
					got[o] = ps
				}
			}
			assert.Equal(t, tc.wantOwned, got, "owned")
			_, statErr := os.Stat(state)
			if !tc.wantSaved {
				assert.ErrorIs(t, statErr, os.ErrNotExist, "unchanged record is not rewritten")
			} else {
				require.NoError(t, statErr, "changed record is saved")
				st, err := os.Stat(state)
				require.NoError(t, err)
				// The record says which addresses are ours: private to
				// root like every state file (issue 11 defect 6).
				assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "record mode")
				b, err := os.ReadFile(state)
				require.NoError(t, err)
				saved, err := parseFloatingIPOwned(b)
				require.NoError(t, err)
				assert.Equal(t, tc.wantOwned, saved, "saved record")
			}
		})
	}
}

// TestApplierPartialFailure checks that one failing address neither stops
// the others nor enters the record, and that a failed delete stays owned.
func TestApplierPartialFailure(t *testing.T) {
	nl := newFIPNL(true)
	nl.addAddr("eth0", "203.0.113.9/32")
	bad := netip.MustParsePrefix("203.0.113.2/32")
	nl.failAddr[bad] = unix.EPERM
	nl.failAddr[netip.MustParsePrefix("203.0.113.9/32")] = unix.EBUSY
	a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	a.owned["manager"] = []string{"203.0.113.9/32"}

	err = a.Set(t.Context(), "manager", prefixes("203.0.113.1/32", "203.0.113.2/32"))
	require.Error(t, err)
	assert.ErrorIs(t, err, unix.EPERM)
	assert.ErrorIs(t, err, unix.EBUSY)
	assert.ErrorContains(t, err, "replace address 203.0.113.2/32 dev eth0")
	assert.ErrorContains(t, err, "delete address 203.0.113.9/32 dev eth0")
	assert.Equal(t, []string{"eth0 203.0.113.1/32", "eth0 203.0.113.9/32"}, nl.addrState())
	assert.Equal(t, []string{"203.0.113.1/32", "203.0.113.9/32"}, a.Owned("manager"))
	assert.False(t, a.Configured(bad.Addr()))
}

// TestApplierLocalRoute checks the bounded wait for an IPv6 address's
// local route after it was added.
func TestApplierLocalRoute(t *testing.T) {
	v6 := netip.MustParsePrefix("2001:db8:1:2::1/64")
	v4 := netip.MustParsePrefix("203.0.113.1/32")
	tests := []struct {
		name        string
		delay       time.Duration
		wantErr     bool
		wantElapsed time.Duration // at least; and less than a second
	}{
		{name: "route at once", delay: 0},
		{name: "route after 300ms", delay: 300 * time.Millisecond, wantElapsed: 300 * time.Millisecond},
		{name: "route never", delay: -1, wantErr: true, wantElapsed: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nl := newFIPNL(true)
				nl.routeDelay = tc.delay
				a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
				require.NoError(t, err)
				start := time.Now()
				err = a.Set(t.Context(), "manager", []netip.Prefix{v4, v6})
				elapsed := time.Since(start)
				assert.GreaterOrEqual(t, elapsed, tc.wantElapsed)
				assert.LessOrEqual(t, elapsed, time.Second)
				assert.Equal(t, []string{"eth0 2001:db8:1:2::1/64 nodad", "eth0 203.0.113.1/32"}, nl.addrState())
				assert.Equal(t, []netip.Prefix{v4, v6}, a.Addresses())
				assert.True(t, a.Configured(v4.Addr()))
				if !tc.wantErr {
					require.NoError(t, err)
					assert.True(t, a.Configured(v6.Addr()))
					return
				}
				require.Error(t, err)
				assert.ErrorIs(t, err, errNoLocalRoute)
				assert.ErrorContains(t, err, "wait for local route of 2001:db8:1:2::1/64 dev eth0")
				assert.False(t, a.Configured(v6.Addr()), "no local route: not configured")

				// The route shows up later: the next Set sees it without
				// a write.
				nl.setRouteDelay(0)
				writes := nl.writeCount()
				require.NoError(t, a.Set(t.Context(), "manager", []netip.Prefix{v4, v6}))
				assert.Equal(t, writes, nl.writeCount())
				assert.True(t, a.Configured(v6.Addr()))
			})
		})
	}
	t.Run("cancelled context ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nl := newFIPNL(true)
			nl.routeDelay = -1
			a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = a.Set(ctx, "manager", []netip.Prefix{v6})
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, 100*time.Millisecond, time.Since(start))
			assert.Equal(t, []string{"2001:db8:1:2::1/64"}, a.Owned("manager"), "added, so owned")
		})
	})
}

// TestApplierAccessors checks Addresses and Configured across owners.
func TestApplierAccessors(t *testing.T) {
	nl := newFIPNL(true)
	a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Empty(t, a.Addresses())
	require.NoError(t, a.Set(t.Context(), "group:web", prefixes("203.0.113.10/32", "2001:db8::1/64")))
	require.NoError(t, a.Set(t.Context(), "manager", prefixes("203.0.113.2/32", "203.0.113.10/32")))
	assert.Equal(t, prefixes("203.0.113.2/32", "203.0.113.10/32", "2001:db8::1/64"), a.Addresses())
	tests := []struct {
		ip   string
		want bool
	}{
		{"203.0.113.2", true},
		{"203.0.113.10", true},
		{"2001:db8::1", true},
		{"2001:db8::", false},
		{"203.0.113.3", false},
	}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			assert.Equal(t, tc.want, a.Configured(netip.MustParseAddr(tc.ip)))
		})
	}
	require.NoError(t, a.Set(t.Context(), "group:web", nil))
	assert.Equal(t, prefixes("203.0.113.2/32", "203.0.113.10/32"), a.Addresses())
	assert.False(t, a.Configured(netip.MustParseAddr("2001:db8::1")))

	t.Run("deleted behind our back is restored", func(t *testing.T) {
		nl.delAddr("eth0", "203.0.113.2/32")
		writes := nl.writeCount()
		require.NoError(t, a.Set(t.Context(), "manager", prefixes("203.0.113.2/32", "203.0.113.10/32")))
		assert.Equal(t, writes+1, nl.writeCount())
		assert.Equal(t, []string{"eth0 203.0.113.10/32", "eth0 203.0.113.2/32"}, nl.addrState())
	})
}

var parseOwnedTests = []struct {
	name    string
	in      string
	want    map[string][]string
	wantErr bool
}{
	{name: "empty object", in: `{}`, want: map[string][]string{}},
	{name: "null", in: `null`, want: map[string][]string{}},
	{
		name: "normalised sorted deduplicated",
		in:   `{"group:web":["203.0.113.10/32","2001:DB8::1/64","203.0.113.10/32"],"manager":[]}`,
		want: map[string][]string{"group:web": {"2001:db8::1/64", "203.0.113.10/32"}},
	},
	{name: "invalid prefix", in: `{"manager":["203.0.113.1"]}`, wantErr: true},
	{name: "empty owner", in: `{"":["203.0.113.1/32"]}`, wantErr: true},
	{name: "not json", in: `{`, wantErr: true},
	{name: "wrong shape", in: `{"manager":"203.0.113.1/32"}`, wantErr: true},
}

func TestParseFloatingIPOwned(t *testing.T) {
	for _, tc := range parseOwnedTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFloatingIPOwned([]byte(tc.in))
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseFloatingIPOwned(f *testing.F) {
	for _, tc := range parseOwnedTests {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseFloatingIPOwned(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(o)
		require.NoError(t, err)
		again, err := parseFloatingIPOwned(out)
		require.NoError(t, err, "parse of %s", out)
		assert.Equal(t, o, again)
		for _, ps := range o {
			for _, s := range ps {
				p, err := netip.ParsePrefix(s)
				require.NoError(t, err)
				assert.Equal(t, p.String(), s, "normalised")
			}
		}
	})
}

// BenchmarkApplierSetUnchanged measures the steady-state Set: reads only,
// no writes, no state file write.
func BenchmarkApplierSetUnchanged(b *testing.B) {
	nl := newFIPNL(true)
	a, err := NewFloatingIPApplier(nl, filepath.Join(b.TempDir(), "owned.json"), slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	ps := prefixes("203.0.113.1/32", "203.0.113.2/32", "2001:db8:1:2::1/64")
	require.NoError(b, a.Set(b.Context(), "manager", ps))
	writes := nl.writeCount()
	for b.Loop() {
		if err := a.Set(b.Context(), "manager", ps); err != nil {
			b.Fatal(err)
		}
	}
	if nl.writeCount() != writes {
		b.Fatalf("unchanged Set wrote: %d writes, want %d", nl.writeCount(), writes)
	}
}

// TestFloatingIPPlanApply checks the Plan/Apply contract: Plan lists the
// changes with reasons and writes nothing, Apply makes exactly those
// changes, and a second Apply makes zero writes and leaves the record file
// alone.
func TestFloatingIPPlanApply(t *testing.T) {
	tests := []struct {
		name   string
		before []string            // on eth0
		owned  map[string][]string // record at start
		wants  FloatingIPWants
		want   []string // changes
		// wantOwned is the record after Apply.
		wantOwned map[string][]string
	}{
		{
			name:      "nothing to change",
			want:      []string{},
			wantOwned: map[string][]string{},
		},
		{
			name:   "add before remove, reasons name the owners",
			before: []string{"203.0.113.9/32"},
			owned:  map[string][]string{"manager": {"203.0.113.9/32"}},
			wants: FloatingIPWants{
				"manager":   {netip.MustParsePrefix("203.0.113.1/32")},
				"group:web": {netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("2001:db8::1/64")},
			},
			want: []string{
				"add address 203.0.113.1/32 dev eth0 (floating ip of group:web, manager)",
				"add address 2001:db8::1/64 dev eth0 (floating ip of group:web)",
				"remove address 203.0.113.9/32 dev eth0 (floating ip of manager no longer wanted)",
			},
			wantOwned: map[string][]string{"group:web": {"2001:db8::1/64", "203.0.113.1/32"}, "manager": {"203.0.113.1/32"}},
		},
		{
			name:      "owned address deleted by someone else is restored",
			owned:     map[string][]string{"manager": {"203.0.113.1/32"}},
			wants:     FloatingIPWants{"manager": {netip.MustParsePrefix("203.0.113.1/32")}},
			want:      []string{"add address 203.0.113.1/32 dev eth0 (floating ip of manager, deleted by someone else)"},
			wantOwned: map[string][]string{"manager": {"203.0.113.1/32"}},
		},
		{
			name:      "foreign address is left alone",
			before:    []string{"198.51.100.9/32"},
			wants:     FloatingIPWants{"manager": {netip.MustParsePrefix("198.51.100.9/32")}},
			want:      []string{},
			wantOwned: map[string][]string{},
		},
		{
			name:      "one removal for an address two owners no longer want",
			before:    []string{"203.0.113.1/32"},
			owned:     map[string][]string{"manager": {"203.0.113.1/32"}, "group:web": {"203.0.113.1/32"}},
			wants:     FloatingIPWants{},
			want:      []string{"remove address 203.0.113.1/32 dev eth0 (floating ip of group:web, manager no longer wanted)"},
			wantOwned: map[string][]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nl := newFIPNL(true)
			for _, s := range tc.before {
				nl.addAddr("eth0", s)
			}
			state := writeRecord(t, tc.owned)
			a, err := NewFloatingIPApplier(nl, state, nil)
			require.NoError(t, err)

			planned, err := a.Plan(t.Context(), tc.wants)
			require.NoError(t, err)
			assert.Equal(t, tc.want, changeStrings(planned), "plan")
			assert.Zero(t, nl.writeCount(), "plan writes nothing")

			applied, err := a.Apply(t.Context(), tc.wants)
			require.NoError(t, err)
			assert.Equal(t, changeStrings(planned), changeStrings(applied), "apply makes the planned changes")
			assert.Equal(t, len(tc.want), nl.writeCount(), "one write per change")
			got, err := parseFloatingIPOwned(mustRead(t, state))
			require.NoError(t, err)
			assert.Equal(t, tc.wantOwned, got, "saved record")

			// Twice: zero writes, the record file untouched.
			require.NoError(t, os.RemoveAll(state))
			nl.resetCounts()
			again, err := a.Apply(t.Context(), tc.wants)
			require.NoError(t, err)
			assert.Empty(t, again)
			assert.Zero(t, nl.writeCount(), "second apply writes")
			assert.NoFileExists(t, state, "second apply rewrote the record")
			assert.Equal(t, tc.wants.Clone(), nonEmpty(a.Wants()))
		})
	}
}

// TestFloatingIPApplyDumps checks that interrupted dumps are retried and
// that a dump that keeps failing changes nothing.
func TestFloatingIPApplyDumps(t *testing.T) {
	want := FloatingIPWants{"manager": prefixes("203.0.113.1/32")}
	t.Run("interrupted dumps are retried", func(t *testing.T) {
		nl := newFIPNL(true)
		nl.interrupt = dumpAttempts - 1
		a, err := NewFloatingIPApplier(nl, "", nil)
		require.NoError(t, err)
		_, err = a.Apply(t.Context(), want)
		require.NoError(t, err)
		assert.Equal(t, []string{"eth0 203.0.113.1/32"}, nl.addrState())
	})
	t.Run("a dump that keeps failing changes nothing", func(t *testing.T) {
		nl := newFIPNL(true)
		nl.interrupt = 100
		a, err := NewFloatingIPApplier(nl, "", nil)
		require.NoError(t, err)
		_, err = a.Apply(t.Context(), want)
		assert.ErrorIs(t, err, netlink.ErrDumpInterrupted)
		assert.ErrorContains(t, err, "apply floating ip addresses: list links")
		assert.Zero(t, nl.writeCount())
		assert.Empty(t, a.Owned("manager"))
	})
}

// TestFloatingIPRemoveGone checks that an address deleted between the read
// and the delete counts as removed and leaves the record.
func TestFloatingIPRemoveGone(t *testing.T) {
	for _, gone := range []error{unix.EADDRNOTAVAIL, unix.ENODEV} {
		t.Run(gone.Error(), func(t *testing.T) {
			nl := newFIPNL(true)
			nl.addAddr("eth0", "203.0.113.1/32")
			a, err := NewFloatingIPApplier(nl, "", nil)
			require.NoError(t, err)
			require.NoError(t, a.Set(t.Context(), "manager", prefixes("203.0.113.1/32")))
			assert.Empty(t, a.Owned("manager"), "foreign: not claimed")
			a.owned["manager"] = []string{"203.0.113.1/32"}
			nl.failAddr[netip.MustParsePrefix("203.0.113.1/32")] = gone
			require.NoError(t, a.Set(t.Context(), "manager", nil))
			assert.Empty(t, a.Owned("manager"))
		})
	}
}

func nonEmpty(w FloatingIPWants) FloatingIPWants {
	for o, ps := range w {
		if len(ps) == 0 {
			delete(w, o)
		}
	}
	return w
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return []byte("{}")
	}
	require.NoError(t, err)
	return b
}

// writeRecord writes owned as an ownership record in a new directory and
// returns its path; nil writes none.
func writeRecord(t *testing.T, owned map[string][]string) string {
	t.Helper()
	state := filepath.Join(t.TempDir(), "owned.json")
	if owned != nil {
		b, err := json.Marshal(owned)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(state, b, 0o644))
	}
	return state
}
