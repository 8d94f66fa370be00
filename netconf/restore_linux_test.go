package netconf

import (
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/hc-agent/hc-agent/metadata"
)

// eventRig is a rig that also injects address and route events and records
// the restore callbacks.
type eventRig struct {
	*rig
	addrs  chan<- netlink.AddrUpdate
	routes chan<- netlink.RouteUpdate

	mu       sync.Mutex
	restores map[string]int // "address", "route", "address backoff", ...
}

func startEventRig(t *testing.T, f *fakeNL, nets []metadata.PrivateNetwork, opts Options) *eventRig {
	t.Helper()
	er := &eventRig{restores: map[string]int{}}
	addrs := make(chan chan<- netlink.AddrUpdate, 1)
	routes := make(chan chan<- netlink.RouteUpdate, 1)
	er.rig = startRig(t, f, nets, opts,
		WithAddrSubscribe(func(ch chan<- netlink.AddrUpdate, done <-chan struct{}) error {
			addrs <- ch
			go func() { <-done; close(ch) }()
			return nil
		}),
		WithRouteSubscribe(func(ch chan<- netlink.RouteUpdate, done <-chan struct{}) error {
			routes <- ch
			go func() { <-done; close(ch) }()
			return nil
		}),
		WithOnRestore(func(kind string, backedOff bool) {
			er.mu.Lock()
			defer er.mu.Unlock()
			if backedOff {
				kind += " backoff"
			}
			er.restores[kind]++
		}),
	)
	er.addrs, er.routes = <-addrs, <-routes
	return er
}

// settled lets a restore that events asked for run: it follows
// restoreSettle of quiet (in the bubble's clock).
func settled() {
	synctest.Wait()
	time.Sleep(restoreSettle)
	synctest.Wait()
}

func (er *eventRig) restoreCounts() map[string]int {
	er.mu.Lock()
	defer er.mu.Unlock()
	return maps.Clone(er.restores)
}

// delAddr deletes an address as someone else would and sends the kernel's
// event for it.
func (er *eventRig) delAddr(t *testing.T, dev, prefix string) {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	require.NoError(t, er.f.AddrDel(mustLink(t, er.f, dev), toNetlinkAddr(p)))
	er.addrs <- netlink.AddrUpdate{LinkAddress: *ipconv.IPNet(p), LinkIndex: er.f.index(dev), NewAddr: false}
}

func TestReconcilerRestoresOnDeletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		er := startEventRig(t, host(), both(), Options{PollInterval: time.Hour})
		defer er.stop()
		require.Equal(t, configuredBoth, er.f.String())
		calls := er.src.callCount()

		er.delAddr(t, "ens10", "10.0.0.3/32")
		synctest.Wait()
		assert.NotContains(t, er.f.String(), "10.0.0.3/32", "no restore before the deletions settle")
		settled()
		assert.Equal(t, configuredBoth, er.f.String(), "alias restored once the deletions settled")

		gw := Desired(both(), Options{}).Networks[1].Routes[0]
		nr := toNetlinkRoute(er.f.index("ens11"), gw)
		require.NoError(t, er.f.RouteDel(nr))
		er.routes <- netlink.RouteUpdate{Type: unix.RTM_DELROUTE, Route: *nr}
		settled()
		assert.Equal(t, configuredBoth, er.f.String(), "route restored at once")

		assert.Equal(t, calls, er.src.callCount(), "a restore reads no metadata")
		assert.Equal(t, map[string]int{"address": 1, "route": 1}, er.restoreCounts())

		// An address of someone else on a NIC we do not manage is no reason.
		_, writes := er.f.counts()
		er.addrs <- netlink.AddrUpdate{LinkAddress: *ipconv.IPNet(netip.MustParsePrefix("203.0.113.10/32")), LinkIndex: er.f.index("eth0")}
		settled()
		_, writes2 := er.f.counts()
		assert.Equal(t, writes, writes2)
	})
}

func TestReconcilerBacksOffFromAFight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		er := startEventRig(t, host(), both(), Options{PollInterval: time.Hour})
		defer er.stop()
		for range restoreLimit + 1 {
			er.delAddr(t, "ens10", "10.0.0.3/32")
			settled()
			time.Sleep(time.Second)
		}
		// More events while backed off change nothing.
		for range 2 {
			er.addrs <- netlink.AddrUpdate{LinkAddress: *ipconv.IPNet(netip.MustParsePrefix("10.0.0.3/32")), LinkIndex: er.f.index("ens10")}
			settled()
		}
		assert.NotContains(t, er.f.String(), "10.0.0.3/32", "left alone after the budget")
		assert.Equal(t, map[string]int{"address": restoreLimit, "address backoff": 1}, er.restoreCounts())
		assert.Equal(t, 1, er.logs.count("another actor keeps deleting it: not restoring for a while"))

		// After the back-off it is restored again.
		time.Sleep(restoreBackoff)
		er.addrs <- netlink.AddrUpdate{LinkAddress: *ipconv.IPNet(netip.MustParsePrefix("10.0.0.3/32")), LinkIndex: er.f.index("ens10")}
		settled()
		assert.Equal(t, configuredBoth, er.f.String())
	})
}

// An external deletion of the pin, or a DHCP client's route to the metadata
// service at renewal, brings the pin back at once.
func TestReconcilerKeepsThePin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		er := startEventRig(t, f, both(), Options{PollInterval: time.Hour, PinMetadataRoute: true})
		defer er.stop()
		const pinned = "route 169.254.169.254/32 via 172.31.1.1 dev eth0 proto 71\n"
		require.Contains(t, f.String(), pinned)

		// dhcpcd replaces the equal route with its own copy.
		require.NoError(t, f.RouteReplace(&netlink.Route{LinkIndex: f.index("ens10"), Dst: ipconv.IPNet(netip.MustParsePrefix("169.254.169.254/32")),
			Gw: netip.MustParseAddr("10.0.0.1").AsSlice(), Protocol: unix.RTPROT_DHCP, Table: unix.RT_TABLE_MAIN}))
		er.routes <- netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, Route: netlink.Route{Dst: ipconv.IPNet(netip.MustParsePrefix("169.254.169.254/32")), Protocol: unix.RTPROT_DHCP, LinkIndex: f.index("ens10")}}
		settled()
		assert.Contains(t, f.String(), pinned)
		assert.NotContains(t, f.String(), "169.254.169.254/32 via 10.0.0.1")
	})
}

// The check and the pin run before the first metadata read and after a
// failed one; the error names the route (issue 13 item 1).
func TestReconcilerPinsBeforeMetadata(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pin       bool
		wantErr   string
		wantPin   bool
		wantBlack bool
	}{
		{name: "no pin", wantErr: "i/o timeout; a route sends 169.254.169.254 via 10.0.0.1 dev ens10 (proto dhcp); set private_networks.pin_metadata_route: true", wantBlack: true},
		{name: "pin", pin: true, wantPin: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := host()
			f.addRoute("169.254.169.254/32", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 1024)
			src := &fakeSource{err: errors.New("i/o timeout")}
			var got Result
			r := New(Options{PinMetadataRoute: tc.pin}, src, f, slog.New(&recordHandler{}), WithOnReconcile(func(res Result, _ error) { got = res }))
			r.reconcile(t.Context())
			assert.Equal(t, tc.wantBlack, got.MetadataBlackholed)
			assert.Equal(t, tc.wantPin, strings.Contains(f.String(), "route 169.254.169.254/32 via 172.31.1.1 dev eth0 proto 71\n"), f.String())
			_, err := r.ReconcileOnce(t.Context())
			if tc.wantErr != "" {
				assert.EqualError(t, err, "read private networks from metadata: "+tc.wantErr)
			} else {
				assert.EqualError(t, err, "read private networks from metadata: i/o timeout")
			}
		})
	}
}

// Issue 15: NICs that were there all along did not "appear", and a clean
// stop is not a subscription error.
func TestReconcilerQuietOnKnownNICsAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		rg := startRig(t, f, both(), Options{})
		// Apply set MTU and up: the kernel reports the NIC again.
		rg.linkEvent(unix.RTM_NEWLINK, "ens10", "86:00:00:2a:7d:e0", f.index("ens10"))
		settled()
		assert.False(t, rg.r.hasPending(), "a NIC that was there is not waited for")
		rg.stop()
		rg.r.subscribeError(errors.New("Receive failed: resource temporarily unavailable"))
		assert.Zero(t, rg.logs.count("netlink event subscription error"))
	})
}

// settle waits for restoreSettle of quiet, absorbing the requests of a
// burst, but never longer than restoreSettleMax.
func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration // between requests during the wait; 0: none
		want  time.Duration
	}{
		{"quiet", 0, restoreSettle},
		{"a short burst", 10 * time.Millisecond, restoreSettle + 40*time.Millisecond},
		{"an endless burst", 10 * time.Millisecond, restoreSettleMax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				req := make(chan struct{}, 1)
				stop := make(chan struct{})
				if tc.every > 0 {
					n := 4 // the short burst: 4 more requests
					if tc.want == restoreSettleMax {
						n = 1 << 30
					}
					go func() {
						for range n {
							select {
							case <-stop:
								return
							case <-time.After(tc.every):
							}
							select {
							case <-stop:
								return
							case req <- struct{}{}:
							}
						}
					}()
				}
				start := time.Now()
				settle(t.Context(), req)
				assert.Equal(t, tc.want, time.Since(start))
				close(stop)
			})
		})
	}
}
