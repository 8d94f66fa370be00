package netconf

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// restoreCounts counts the AddressRestorer's callbacks by kind.
type restoreCounts struct {
	mu       sync.Mutex
	restores map[string]int
	backoffs map[string]int
	changed  chan struct{}
}

func newRestoreCounts() *restoreCounts {
	return &restoreCounts{restores: map[string]int{}, backoffs: map[string]int{}, changed: make(chan struct{}, 100)}
}

func (c *restoreCounts) observe(kind string, backedOff bool) {
	c.mu.Lock()
	if backedOff {
		c.backoffs[kind]++
	} else {
		c.restores[kind]++
	}
	c.mu.Unlock()
	c.changed <- struct{}{}
}

func (c *restoreCounts) get() (map[string]int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, b := map[string]int{}, map[string]int{}
	for k, v := range c.restores {
		r[k] = v
	}
	for k, v := range c.backoffs {
		b[k] = v
	}
	return r, b
}

// waitRestores waits for the callbacks until the restores of each kind
// reach at least want (ip's flush deletes in rounds, and may take an
// address restored between two rounds again); the generous deadline only
// ends a broken test (the timing goal is the bench's).
func (c *restoreCounts) waitRestores(t *testing.T, want map[string]int) {
	t.Helper()
	c.waitFor(t, fmt.Sprintf("restores %v", want), func(restores, _ map[string]int) bool {
		for k, n := range want {
			if restores[k] < n {
				return false
			}
		}
		return true
	})
}

// waitFor waits for the callbacks until done holds for the counts.
func (c *restoreCounts) waitFor(t *testing.T, what string, done func(restores, backoffs map[string]int) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		restores, backoffs := c.get()
		if done(restores, backoffs) {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("restores %v, back-offs %v: still waiting for %s", restores, backoffs, what)
		}
	}
}

// nsAddrs returns the addresses of dev with their labels ("ip/len label"),
// link-local ones left out.
func nsAddrs(t *testing.T, h *netlink.Handle, dev string) []string {
	t.Helper()
	l, err := h.LinkByName(dev)
	require.NoError(t, err)
	as, err := h.AddrList(l, netlink.FAMILY_ALL)
	require.NoError(t, err)
	var out []string
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, strings.TrimSpace(addrPrefix(a).String()+" "+a.Label))
	}
	return out
}

// waitAddrs waits until dev has exactly want (see nsAddrs).
func waitAddrs(t *testing.T, h *netlink.Handle, dev string, want []string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !assert.ObjectsAreEqual(sortedCopy(want), sortedCopy(nsAddrs(t, h, dev))) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s has %v, want %v", dev, nsAddrs(t, h, dev), want)
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// A floating IP on the public NIC and a private VIP on a private NIC, as a
// holder has them: a DHCP client's label flush leaves both (they carry
// IF:hc), and a full flush or a delete by hand is put back at once from
// the address event, not at the owner's next API read.
func TestAddressRestorerNetns(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	ns, h := host.ns, host.h
	pub := host.addVeth(t, peers, "96:00:00:aa:bb:02")
	priv := host.addVeth(t, peers, "86:00:00:aa:bb:03")
	privMAC := mustMAC("86:00:00:aa:bb:03")
	for _, dev := range []string{pub, priv} {
		host.ip(t, "link", "set", dev, "up")
	}
	// Like a real server, the public NIC carries the IPv4 default route.
	host.ip(t, "route", "add", "default", "dev", pub)

	ctx, cancel := context.WithCancel(t.Context())
	fips, err := NewFloatingIPApplier(h, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	v4 := netip.MustParsePrefix("203.0.113.10/32")
	v6 := netip.MustParsePrefix("2001:db8:1:2::1/64")
	require.NoError(t, fips.Set(ctx, "group:web", []netip.Prefix{v4, v6}))
	vips := NewPrivateVIPs(h)
	vip := netip.MustParseAddr("10.0.0.7")
	require.NoError(t, vips.AddVIP(ctx, privMAC, vip))

	wantPub := []string{"2001:db8:1:2::1/64", "203.0.113.10/32 " + pub + ":hc"}
	wantPriv := []string{"10.0.0.7/32 " + priv + ":hc"}
	assert.ElementsMatch(t, wantPub, nsAddrs(t, h, pub))
	assert.ElementsMatch(t, wantPriv, nsAddrs(t, h, priv))

	counts := newRestoreCounts()
	r := NewAddressRestorer(nil, NewKernelEvents(&ns), slog.New(slog.DiscardHandler), counts.observe,
		RestoreTarget{Kind: "floating_ip", Restore: fips.Restore},
		RestoreTarget{Kind: "private_vip", Restore: vips.Restore})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	// Run subscribes before it returns to its loop; a deletion right after
	// the start can precede the subscription, so the first step waits for
	// one restore that proves the events arrive.
	host.ip(t, "addr", "del", v4.String(), "dev", pub)
	counts.waitRestores(t, map[string]int{"floating_ip": 1})

	t.Run("a DHCP client's label flush leaves them", func(t *testing.T) {
		host.ip(t, "-4", "addr", "flush", "dev", pub, "label", pub) // as dhclient-script does
		host.ip(t, "-4", "addr", "flush", "dev", priv, "label", priv)
		assert.ElementsMatch(t, wantPub, nsAddrs(t, h, pub))
		assert.ElementsMatch(t, wantPriv, nsAddrs(t, h, priv))
	})

	t.Run("a full flush is put back", func(t *testing.T) {
		host.ip(t, "addr", "flush", "dev", pub, "scope", "global")
		host.ip(t, "addr", "flush", "dev", priv)
		counts.waitRestores(t, map[string]int{"floating_ip": 3, "private_vip": 1})
		waitAddrs(t, h, pub, wantPub)
		waitAddrs(t, h, priv, wantPriv)
		assert.ElementsMatch(t, wantPub, nsAddrs(t, h, pub))
		assert.ElementsMatch(t, wantPriv, nsAddrs(t, h, priv))
		assert.True(t, fips.Configured(v6.Addr()), "ipv6 back with its local route")
	})

	t.Run("an address its owner gave up stays gone", func(t *testing.T) {
		require.NoError(t, fips.Set(ctx, "group:web", []netip.Prefix{v4}))
		require.NoError(t, vips.RemoveVIP(ctx, privMAC, vip))
		// A deletion elsewhere makes the restorer look again.
		before, _ := counts.get()
		host.ip(t, "addr", "del", v4.String(), "dev", pub)
		counts.waitRestores(t, map[string]int{"floating_ip": before["floating_ip"] + 1})
		assert.Equal(t, []string{"203.0.113.10/32 " + pub + ":hc"}, nsAddrs(t, h, pub))
		assert.Empty(t, nsAddrs(t, h, priv))
	})

	t.Run("another actor that keeps deleting wins after five restores a minute", func(t *testing.T) {
		// The restores of 203.0.113.10 above count too: at most five in
		// all before the back-off.
		for i := 0; ; i++ {
			restores, backoffs := counts.get()
			if backoffs["floating_ip"] > 0 {
				break
			}
			require.Less(t, i, restoreLimit, "no back-off after %d restores", restores["floating_ip"])
			host.ip(t, "addr", "del", v4.String(), "dev", pub)
			// The deletion is either restored or the one that backs off.
			counts.waitFor(t, "a restore or a back-off", func(r, b map[string]int) bool {
				return r["floating_ip"] > restores["floating_ip"] || b["floating_ip"] > 0
			})
		}
		_, backoffs := counts.get()
		assert.Equal(t, map[string]int{"floating_ip": 1}, backoffs)
	})
}
