package netconf

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
)

// nsCommand returns a command that runs argv inside ns (nsenter on the
// namespace handle, passed as fd 3), so that real tools such as ip act in
// the test's namespace and never on the host's.
func nsCommand(t testing.TB, ns netns.NsHandle, argv ...string) *exec.Cmd {
	t.Helper()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("skipping: nsenter (util-linux) not installed")
	}
	cmd := exec.Command(nsenter, append([]string{"--net=/proc/self/fd/3", "--"}, argv...)...)
	cmd.ExtraFiles = []*os.File{nsFile(t, ns)}
	return cmd
}

// nsFile returns a duplicate of the namespace handle as an *os.File for a
// child's ExtraFiles. A duplicate, because an *os.File closes its fd when
// it is collected: wrapping the handle itself would close the test's
// namespace fd behind its back (and a later nsenter could then enter
// whatever reused the number).
func nsFile(t testing.TB, ns netns.NsHandle) *os.File {
	t.Helper()
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fd), "netns")
	t.Cleanup(func() { f.Close() })
	return f
}

// ip runs ip(8) with args inside n and fails the test when it fails.
func (n *testNS) ip(t testing.TB, args ...string) {
	t.Helper()
	out, err := nsCommand(t, n.ns, append([]string{"ip"}, args...)...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// waitState polls the namespace state until it equals want, and fails after
// a generous deadline (the timing goal itself is measured in the bench).
func (n *testNS) waitState(t *testing.T, names map[string]string, want, what string) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for got := n.state(t, names); got != want; got = n.state(t, names) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not restored within 10s (the poll is an hour away):\n%s", what, got)
		}
	}
	d := time.Since(start)
	t.Logf("%s: restored after %v", what, d.Round(time.Millisecond))
	return d
}

// dhclient-script runs `ip addr flush dev IF label IF`: the addresses
// hc-agent adds carry IF:hc and survive it (issue 13 item 3).
func TestNetnsLabelSurvivesDHCPFlush(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:01:01")
	l0, err := host.h.LinkByName(e0)
	require.NoError(t, err)
	// The DHCP client's lease, labelled with the device as ip-addr does.
	dhcp := toNetlinkAddr(netip.MustParsePrefix("10.0.0.2/32"))
	dhcp.Label = e0
	require.NoError(t, host.h.AddrAdd(l0, dhcp))
	n1 := withMAC(nwTest1(), "86:00:00:7a:01:01")
	var owned Owned
	_, err = Apply(t.Context(), host.h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)

	addrs, err := host.h.AddrList(l0, netlink.FAMILY_V4)
	require.NoError(t, err)
	labels := map[string]string{}
	for _, a := range addrs {
		labels[addrPrefix(a).String()] = a.Label
	}
	assert.Equal(t, map[string]string{"10.0.0.2/32": e0, "10.0.0.3/32": e0 + ":hc", "10.0.0.4/32": e0 + ":hc"}, labels)

	host.ip(t, "addr", "flush", "dev", e0, "label", e0)
	st := host.state(t, map[string]string{e0: "ens10"})
	assert.NotContains(t, st, "10.0.0.2/32", "the lease is the DHCP client's to flush")
	assert.Contains(t, st, "addr 10.0.0.3/32 dev ens10\n")
	assert.Contains(t, st, "addr 10.0.0.4/32 dev ens10\n")
}

func TestAddrLabel(t *testing.T) {
	for _, tc := range []struct{ dev, want string }{
		{"ens10", "ens10:hc"},
		{"enp7s0", "enp7s0:hc"},
		{"enp0s31f6a", "enp0s31f6a:hc"},
		{"enx0123456789", ""}, // 16 with the suffix: the kernel's default label
		{"wlp0s20f3abcdef", ""},
	} {
		t.Run(tc.dev, func(t *testing.T) {
			assert.Equal(t, tc.want, addrLabel(tc.dev))
		})
	}
}

// Someone else deletes our addresses and routes: the address and route
// events bring them back long before the (hour-long) poll (issue 13 item 2).
func TestNetnsRestoreAfterExternalDeletion(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:01:11")
	names := map[string]string{e0: "ens10"}
	n1 := withMAC(nwTest1(), "86:00:00:7a:01:11")
	startReconciler(t, host, []metadata.PrivateNetwork{n1}, Options{PollInterval: time.Hour})
	configured := host.state(t, names)
	require.Contains(t, configured, "addr 10.0.0.3/32 dev ens10\n")

	for _, tc := range []struct {
		name string
		ip   []string
	}{
		{"ip addr del alias", []string{"addr", "del", "10.0.0.3/32", "dev", e0}},
		{"ip route del network", []string{"route", "del", "10.0.0.0/8", "dev", e0}},
		{"ip addr flush", []string{"addr", "flush", "dev", e0}},
	} {
		host.ip(t, tc.ip...)
		host.waitState(t, names, configured, tc.name)
	}
}

// A DHCP client's renewal made our address lease-bound and renewals stopped:
// when the kernel expires it, it is restored at once, permanent again
// (issue 13 item 4).
func TestNetnsLeaseBoundAddressExpires(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:01:21")
	names := map[string]string{e0: "ens10"}
	n1 := withMAC(nwTest1(), "86:00:00:7a:01:21")
	startReconciler(t, host, []metadata.PrivateNetwork{n1}, Options{PollInterval: time.Hour})
	configured := host.state(t, names)

	// What dhclient's RENEW does to an equal address.
	host.ip(t, "addr", "change", "10.0.0.2/32", "dev", e0, "valid_lft", "1", "preferred_lft", "1")
	require.False(t, permanent(t, host, e0, "10.0.0.2/32"), "lease-bound now")
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for !permanent(t, host, e0, "10.0.0.2/32") {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("expired address not restored:\n%s", host.state(t, names))
		}
	}
	t.Logf("lease-bound address expired and restored %v after the change", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, configured, host.state(t, names))
}

// permanent reports whether prefix is on dev with an infinite lifetime.
func permanent(t *testing.T, n *testNS, dev, prefix string) bool {
	t.Helper()
	l, err := n.h.LinkByName(dev)
	require.NoError(t, err)
	addrs, err := n.h.AddrList(l, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, a := range addrs {
		if addrPrefix(a).String() == prefix {
			return a.Flags&unix.IFA_F_PERMANENT != 0
		}
	}
	return false
}

// Images configure the public gateway on-link (netplan's on-link: true):
// a default route with the onlink flag and no route to 172.31.1.1. The pin
// copies the flag, or the kernel refuses it as unreachable (found by the
// black-hole bench on the simulated cloud).
func TestNetnsPinOnLinkGateway(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	pub := host.addVeth(t, peers, "96:00:00:7a:01:31")
	priv := host.addVeth(t, peers, "86:00:00:7a:01:32")
	host.ip(t, "link", "set", pub, "up")
	host.ip(t, "addr", "add", "203.0.113.10/32", "dev", pub)
	host.ip(t, "route", "add", "default", "via", "172.31.1.1", "dev", pub, "onlink")
	n1 := withMAC(nwTest1(), "86:00:00:7a:01:32")
	var owned Owned
	_, err := Apply(t.Context(), host.h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)
	host.ip(t, "route", "add", "169.254.169.254/32", "via", "10.0.0.1", "dev", priv, "proto", "dhcp")

	mc, err := CheckMetadataRoute(t.Context(), host.h, true, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"add route 169.254.169.254/32 via 172.31.1.1 onlink dev " + pub + " (metadata route pinned to the public gateway)"}, changeStrings(mc.Changes))
	assert.False(t, mc.Blackholed)
	assert.Equal(t, pub, mc.Route.Dev)
}
