package netconf

import (
	"errors"
	"net/netip"
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

// quietPoll is the poll interval of the tests below.
const quietPoll = 30 * time.Second

// pollReads runs change (nil: none) and lets the next poll run, and returns
// the kernel reads made from the change to after the poll (by the poll, or
// by a reconcile the change triggered). The poll timer is jittered by ±10%,
// so 1.1 × quietPoll holds exactly one poll.
func (rg *rig) pollReads(t *testing.T, change func()) int {
	t.Helper()
	synctest.Wait()
	rg.f.resetCounts()
	n := rg.reconciles()
	if change != nil {
		change()
	}
	time.Sleep(quietPoll + quietPoll/10)
	synctest.Wait()
	require.Greater(t, rg.reconciles(), n, "no poll ran")
	reads, _ := rg.f.counts()
	return reads
}

// setMTU changes a link's MTU behind the Reconciler's back (not counted as
// a netlink call) and sends the kernel's link event for it.
func (er *eventRig) setMTU(dev string, mtu int) {
	er.f.mu.Lock()
	var a netlink.LinkAttrs
	for i := range er.f.links {
		if er.f.links[i].Name == dev {
			er.f.links[i].MTU = mtu
			a = er.f.links[i]
		}
	}
	er.f.mu.Unlock()
	er.linkEvent(unix.RTM_NEWLINK, a.Name, a.HardwareAddr.String(), a.Index)
}

// The kernel is read only when an event, new options, new metadata or a
// lost subscription says something may have changed: by the restore an event
// asks for, by the reconcile new options trigger, or by the next poll.
// Otherwise a poll is one metadata read. After each change the polls are
// quiet again.
func TestReconcilerReadsKernelOnlyOnChange(t *testing.T) {
	v4 := func(s string) netlink.Addr { return netlink.Addr{IPNet: ipconv.IPNet(netip.MustParsePrefix(s))} }
	oneNet := []metadata.PrivateNetwork{nwTest1()}
	cases := []struct {
		name   string
		change func(er *eventRig)
		reads  bool // the kernel is read between the change and the next poll
		// The state after it is what nets (nil: both()) with opts give.
		nets []metadata.PrivateNetwork
		opts Options
	}{
		{name: "nothing", change: func(*eventRig) {}},
		{name: "mtu of a managed nic changed", reads: true, change: func(er *eventRig) {
			er.setMTU("ens10", 1400)
		}},
		{name: "ipv4 address added on the public nic", reads: true, change: func(er *eventRig) {
			er.addrs <- netlink.AddrUpdate{LinkAddress: *v4("203.0.113.20/32").IPNet, LinkIndex: er.f.index("eth0"), NewAddr: true}
		}},
		{name: "ipv6 address added", change: func(er *eventRig) {
			er.addrs <- netlink.AddrUpdate{LinkAddress: *ipconv.IPNet(netip.MustParsePrefix("2001:db8::1/64")), LinkIndex: er.f.index("eth0"), NewAddr: true}
		}},
		{name: "main table route added", reads: true, change: func(er *eventRig) {
			er.routes <- netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, Route: netlink.Route{
				LinkIndex: er.f.index("eth0"), Dst: ipconv.IPNet(netip.MustParsePrefix("198.51.100.0/24")), Table: unix.RT_TABLE_MAIN, Family: netlink.FAMILY_V4,
			}}
		}},
		{name: "route in another table", change: func(er *eventRig) {
			er.routes <- netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, Route: netlink.Route{
				LinkIndex: er.f.index("eth0"), Dst: ipconv.IPNet(netip.MustParsePrefix("198.51.100.0/24")), Table: 100, Family: netlink.FAMILY_V4,
			}}
		}},
		{name: "metadata changed", reads: true, nets: oneNet, change: func(er *eventRig) {
			er.src.set(oneNet, nil)
		}},
		{name: "options changed", reads: true, opts: Options{MTU: 1400}, change: func(er *eventRig) {
			er.r.SetOptions(Options{MTU: 1400})
		}},
		{name: "subscription error", reads: true, change: func(er *eventRig) {
			er.r.subscribeError(errors.New("recvmsg: no buffer space available"))
		}},
		{name: "a subscription renewed after events were lost", reads: true, change: func(er *eventRig) {
			er.r.kernelChanged() // what watchEvents calls then
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				er := startEventRig(t, host(), both(), Options{PollInterval: quietPoll})
				defer er.stop()
				require.Equal(t, configuredBoth, er.f.String())
				require.Zero(t, er.pollReads(t, nil), "the fake sends no events for the start's own writes: the first poll is quiet")

				reads := er.pollReads(t, func() { tc.change(er) })
				if tc.reads {
					assert.Positive(t, reads, "the kernel is read after the change")
				} else {
					assert.Zero(t, reads, "no kernel state is read after the change")
				}
				nets := tc.nets
				if nets == nil {
					nets = both()
				}
				assert.Equal(t, applied(t, nets, tc.opts), er.f.String(), "as a reconcile from both() to nets with opts leaves it")
				assert.Zero(t, er.pollReads(t, nil), "quiet again after one poll")
				assert.NoError(t, er.lastErr())
			})
		})
	}
}

// A reconcile that did not leave the kernel as desired (a write failed, or
// the fight guard held one back) is followed by a poll that reads the kernel
// again, without any event.
func TestReconcilerPollRetriesWithoutEvent(t *testing.T) {
	t.Run("failed write", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := host()
			f.mu.Lock()
			f.fail["AddrReplace"], f.failOnce = unix.EPERM, true
			f.mu.Unlock()
			er := startEventRig(t, f, both(), Options{PollInterval: quietPoll})
			defer er.stop()
			require.Error(t, er.lastErr())
			assert.Positive(t, er.pollReads(t, nil))
			assert.Equal(t, configuredBoth, er.f.String())
			assert.NoError(t, er.lastErr())
			assert.Zero(t, er.pollReads(t, nil))
		})
	})
	t.Run("fight guard", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			er := startEventRig(t, host(), both(), Options{PollInterval: quietPoll})
			defer er.stop()
			for range restoreLimit + 1 {
				er.delAddr(t, "ens10", "10.0.0.3/32")
				settled()
			}
			require.NotContains(t, er.f.String(), "10.0.0.3/32", "backed off")
			// The polls during the back-off read the kernel and leave the
			// address out; the first after it puts it back.
			for er.f.String() != configuredBoth {
				require.Positive(t, er.pollReads(t, nil), "a poll after a deferred write reads the kernel")
			}
			assert.Zero(t, er.pollReads(t, nil))
		})
	})
}

// A link change someone else made is put back from its event, without
// waiting for the poll.
func TestReconcilerRestoresLinkChangeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		er := startEventRig(t, host(), both(), Options{PollInterval: time.Hour})
		defer er.stop()
		n := er.reconciles()
		er.setMTU("ens10", 1400)
		settled()
		assert.Equal(t, configuredBoth, er.f.String())
		assert.Equal(t, n, er.reconciles(), "put back by a restore, not a reconcile")
	})
}

// Without address and route events the Reconciler cannot know that the
// kernel is unchanged: every poll reads it.
func TestReconcilerPollAlwaysReadsWithoutEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rg := startRig(t, host(), both(), Options{PollInterval: quietPoll})
		defer rg.stop()
		for range 2 {
			assert.Positive(t, rg.pollReads(t, nil))
		}
	})
}

// applied is the state of host() after Apply of both() and then of nets
// with opts.
func applied(t *testing.T, nets []metadata.PrivateNetwork, opts Options) string {
	t.Helper()
	f := host()
	var owned Owned
	_, err := Apply(t.Context(), f, Desired(both(), Options{}), &owned)
	require.NoError(t, err)
	_, err = Apply(t.Context(), f, Desired(nets, opts), &owned)
	require.NoError(t, err)
	return f.String()
}
