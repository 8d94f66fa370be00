package netconf

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			nl := newFIPNL()
			if tc.noPublic {
				nl.links = nl.links[1:]
				nl.defaultLink = 3
			}
			for _, s := range tc.before {
				nl.add(2, s)
			}
			for _, s := range tc.eth1 {
				nl.add(3, s)
			}
			state := filepath.Join(t.TempDir(), "owned.json")
			if tc.owned != nil {
				b, err := json.Marshal(tc.owned)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(state, b, 0o644))
			}
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
			assert.Equal(t, tc.want, nl.state())
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
	nl := newFIPNL()
	nl.add(2, "203.0.113.9/32")
	bad := netip.MustParsePrefix("203.0.113.2/32")
	nl.failReplace = map[netip.Prefix]error{bad: unix.EPERM}
	nl.failDel = map[netip.Prefix]error{netip.MustParsePrefix("203.0.113.9/32"): unix.EBUSY}
	a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	a.owned["manager"] = []string{"203.0.113.9/32"}

	err = a.Set(t.Context(), "manager", prefixes("203.0.113.1/32", "203.0.113.2/32"))
	require.Error(t, err)
	assert.ErrorIs(t, err, unix.EPERM)
	assert.ErrorIs(t, err, unix.EBUSY)
	assert.ErrorContains(t, err, "replace address 203.0.113.2/32 dev eth0")
	assert.ErrorContains(t, err, "delete address 203.0.113.9/32 dev eth0")
	assert.Equal(t, []string{"eth0 203.0.113.1/32", "eth0 203.0.113.9/32"}, nl.state())
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
				nl := newFIPNL()
				nl.routeDelay = tc.delay
				a, err := NewFloatingIPApplier(nl, "", slog.New(slog.DiscardHandler))
				require.NoError(t, err)
				start := time.Now()
				err = a.Set(t.Context(), "manager", []netip.Prefix{v4, v6})
				elapsed := time.Since(start)
				assert.GreaterOrEqual(t, elapsed, tc.wantElapsed)
				assert.LessOrEqual(t, elapsed, time.Second)
				assert.Equal(t, []string{"eth0 2001:db8:1:2::1/64 nodad", "eth0 203.0.113.1/32"}, nl.state())
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
				nl.mu.Lock()
				nl.routeDelay = 0
				nl.mu.Unlock()
				writes := nl.writeCount()
				require.NoError(t, a.Set(t.Context(), "manager", []netip.Prefix{v4, v6}))
				assert.Equal(t, writes, nl.writeCount())
				assert.True(t, a.Configured(v6.Addr()))
			})
		})
	}
	t.Run("cancelled context ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			nl := newFIPNL()
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
	nl := newFIPNL()
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
		nl.del(2, "203.0.113.2/32")
		writes := nl.writeCount()
		require.NoError(t, a.Set(t.Context(), "manager", prefixes("203.0.113.2/32", "203.0.113.10/32")))
		assert.Equal(t, writes+1, nl.writeCount())
		assert.Equal(t, []string{"eth0 203.0.113.10/32", "eth0 203.0.113.2/32"}, nl.state())
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
	nl := newFIPNL()
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
