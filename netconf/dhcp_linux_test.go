package netconf

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/metadata"
)

// Integration tests with a real DHCP server and client from Debian packages
// (issue 13): dnsmasq (dnsmasq-base) plays the private network's DHCP server
// as Hetzner's does (a /32 lease, a router, option 121 routes including the
// 169.254.169.254/32 black hole), dhclient (isc-dhcp-client) runs on the
// private NIC with the real dhclient-script, as hc-utils starts it. Both run
// in namespaces the test creates; dhclient also in a private mount namespace
// with its own /etc/dhcp, /etc/resolv.conf and /run, so that nothing of the
// host is read or written. Every process is killed by PID in Cleanup.

// dhcpLease is the lease dnsmasq hands out: the server's private IP, as
// metadata also lists it (nwTest1).
const dhcpLeaseIP = "10.0.0.2"

// watchedProc is a process started by a test whose output lines are kept
// and can be waited for.
type watchedProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
	cond  chan struct{} // closed and replaced on every new line
}

// startProc starts cmd, collects its stdout and stderr lines, and kills it
// by PID (then waits for it) when the test ends.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *watchedProc {
	t.Helper()
	p := &watchedProc{name: name, cmd: cmd, done: make(chan struct{}), cond: make(chan struct{})}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start(), "start %s", name)
	// Exits when the pipe is closed after the process ended.
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.cond)
			p.cond = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	// Exits when the process does.
	go func() {
		_ = cmd.Wait()
		w.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop kills the process by its PID and waits for it.
func (p *watchedProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *watchedProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLines waits until n lines containing sub were printed in all.
func (p *watchedProc) waitLines(t *testing.T, sub string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		c, got := p.cond, 0
		for _, l := range p.lines {
			if strings.Contains(l, sub) {
				got++
			}
		}
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c:
		case <-p.done:
			t.Fatalf("%s exited before printing %q %d times:\n%s", p.name, sub, n, p.output())
		case <-deadline:
			t.Fatalf("%s printed %q %d of %d times within %v:\n%s", p.name, sub, got, n, timeout, p.output())
		}
	}
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (packages dnsmasq-base, isc-dhcp-client, util-linux)", tool)
		}
	}
}

// dhcpRig is a server namespace with a public and a private NIC, and a
// "cloud" namespace with the other ends: the public gateway 172.31.1.1 and
// the private gateway 10.0.0.1 with dnsmasq on it.
type dhcpRig struct {
	host, cloud *testNS
	pub, priv   string // NIC names in host
	names       map[string]string
	dir         string
}

func newDHCPRig(t *testing.T, mac string) *dhcpRig {
	t.Helper()
	requireTools(t, "dnsmasq", "dhclient", "dhclient-script", "unshare", "nsenter")
	if testing.Short() {
		t.Skip("skipping: DHCP renewals take seconds")
	}
	rg := &dhcpRig{host: newNS(t), cloud: newNS(t), dir: t.TempDir()}
	rg.pub = rg.host.addVeth(t, rg.cloud, "96:00:00:7a:02:01")
	rg.priv = rg.host.addVeth(t, rg.cloud, mac)
	rg.names = map[string]string{rg.priv: "ens10"}
	peer := func(dev string) string { return strings.Replace(dev, "hcn", "hcp", 1) }

	// The public side as Hetzner's DHCP sets it up.
	rg.host.ip(t, "link", "set", rg.pub, "up")
	rg.host.ip(t, "addr", "add", "203.0.113.10/32", "dev", rg.pub)
	rg.host.ip(t, "route", "add", "172.31.1.1", "dev", rg.pub, "proto", "dhcp")
	rg.host.ip(t, "route", "add", "default", "via", "172.31.1.1", "dev", rg.pub, "proto", "dhcp", "metric", "100")
	rg.host.ip(t, "link", "set", rg.priv, "up")
	rg.cloud.ip(t, "addr", "add", "10.0.0.1/24", "dev", peer(rg.priv))

	dnsmasq := startProc(t, "dnsmasq", nsCommand(t, rg.cloud.ns, "dnsmasq",
		"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0",
		"--user=root", "--pid-file=", "--log-dhcp", "--log-facility=-",
		"--bind-interfaces", "--interface="+peer(rg.priv), "--dhcp-authoritative",
		"--dhcp-leasefile="+filepath.Join(rg.dir, "dnsmasq.leases"),
		"--dhcp-range="+dhcpLeaseIP+","+dhcpLeaseIP+",255.255.255.0,2m",
		"--dhcp-option=option:netmask,255.255.255.255",
		"--dhcp-option=option:router,10.0.0.1",
		// The on-link route to the gateway first, so that the client can
		// install the others, the metadata black hole included.
		"--dhcp-option=121,10.0.0.1/32,0.0.0.0,10.0.0.0/8,10.0.0.1,169.254.169.254/32,10.0.0.1",
		// Renewals every 3 s (networkd follows the server's T1; dhclient's
		// own configuration supersedes it as well).
		"--dhcp-option-force=option:T1,3",
		"--dhcp-option-force=option:T2,100",
	))
	dnsmasq.waitLines(t, "DHCP, IP range", 1, 10*time.Second)
	rg.writeDHCPConf(t)
	return rg
}

// writeDHCPConf lays out the private /etc/dhcp for dhclient: its own
// dhclient.conf and only the package's rfc3442 exit hook (the one that
// installs option 121 routes), no other hook of the host.
func (rg *dhcpRig) writeDHCPConf(t *testing.T) {
	t.Helper()
	hook, err := os.ReadFile("/etc/dhcp/dhclient-exit-hooks.d/rfc3442-classless-routes")
	if err != nil {
		t.Skipf("skipping: isc-dhcp-client's rfc3442 hook not found: %v", err)
	}
	etc := filepath.Join(rg.dir, "etc-dhcp")
	for _, d := range []string{"dhclient-enter-hooks.d", "dhclient-exit-hooks.d"} {
		require.NoError(t, os.MkdirAll(filepath.Join(etc, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(etc, "dhclient-exit-hooks.d", "rfc3442-classless-routes"), hook, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "dhclient.conf"), []byte(`option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, interface-mtu, rfc3442-classless-static-routes;
supersede dhcp-renewal-time 2;
supersede dhcp-rebinding-time 100;
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(rg.dir, "resolv.conf"), nil, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(rg.dir, "run"), 0o755))
}

// dhclient runs dhclient with args (then the NIC) in the host namespace and a
// private mount namespace.
func (rg *dhcpRig) dhclient(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	d := rg.dir
	script := fmt.Sprintf(`set -e
mount --bind %[1]s/etc-dhcp /etc/dhcp
mount --bind %[1]s/resolv.conf /etc/resolv.conf
mount --bind %[1]s/run /run
exec nsenter --net=/proc/self/fd/3 -- dhclient -4 -v -cf /etc/dhcp/dhclient.conf -lf %[1]s/dhclient.leases -pf %[1]s/dhclient.pid "$@"`, d)
	// A UTS namespace too: dhclient-script may set the hostname.
	argv := append([]string{"--mount", "--uts", "--propagation", "private", "sh", "-c", script, "dhclient"}, args...)
	argv = append(argv, rg.priv)
	cmd := exec.Command("unshare", argv...)
	cmd.ExtraFiles = []*os.File{nsFile(t, rg.host.ns)}
	return cmd
}

// startDHCPClient starts dhclient in the foreground and waits for its
// first lease.
func (rg *dhcpRig) startDHCPClient(t *testing.T) *watchedProc {
	t.Helper()
	p := startProc(t, "dhclient", rg.dhclient(t, "-d"))
	p.waitLines(t, "bound to "+dhcpLeaseIP, 1, 20*time.Second)
	return p
}

// metadataVia says where the kernel sends metadata traffic: "dev via gw".
func (rg *dhcpRig) metadataVia(t *testing.T) string {
	t.Helper()
	routes, err := rg.host.h.RouteGet(net.ParseIP(MetadataAddr.String()))
	require.NoError(t, err)
	require.NotEmpty(t, routes)
	l, err := rg.host.h.LinkByIndex(routes[0].LinkIndex)
	require.NoError(t, err)
	return l.Attrs().Name + " via " + routes[0].Gw.String()
}

// changeCounter counts address and route changes in the host namespace by
// everyone (hc-agent, the DHCP client), from netlink events.
type changeCounter struct {
	mu     sync.Mutex
	events []string
	at     []time.Time
}

func countChanges(t *testing.T, n *testNS) *changeCounter {
	t.Helper()
	cc := &changeCounter{}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	addrs := make(chan netlink.AddrUpdate, 256)
	routes := make(chan netlink.RouteUpdate, 256)
	ns := n.ns
	require.NoError(t, netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &ns}))
	require.NoError(t, netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &ns}))
	// Exits when both subscriptions closed their channels after done.
	go func() {
		for addrs != nil || routes != nil {
			select {
			case u, ok := <-addrs:
				if !ok {
					addrs = nil
					continue
				}
				p, _ := netip.AddrFromSlice(u.LinkAddress.IP)
				cc.add(fmt.Sprintf("addr new=%v %s lft=%d", u.NewAddr, p.Unmap(), u.ValidLft))
			case u, ok := <-routes:
				if !ok {
					routes = nil
					continue
				}
				cc.add(fmt.Sprintf("route type=%d %s via %s proto %d", u.Type, routeDst(u.Route), routeGw(u.Route), u.Protocol))
			}
		}
	}()
	return cc
}

func (cc *changeCounter) add(s string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.events = append(cc.events, s)
	cc.at = append(cc.at, time.Now())
}

// gap returns the time from the first event containing from to the first
// later one containing to (as this listener read them: an order, not a
// latency).
func (cc *changeCounter) gap(from, to string) (time.Duration, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i, e := range cc.events {
		if !strings.Contains(e, from) {
			continue
		}
		for j := i + 1; j < len(cc.events); j++ {
			if strings.Contains(cc.events[j], to) {
				return cc.at[j].Sub(cc.at[i]), true
			}
		}
		return 0, false
	}
	return 0, false
}

func (cc *changeCounter) snapshot() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return append([]string(nil), cc.events...)
}

const pinnedVia = " via 172.31.1.1"

// TestDHCPClientBlackholeAndPin: dhclient got its lease and the black hole
// before hc-agent starts (the normal boot order). The reconciler pins the
// metadata route in its first reconcile, renewals and a re-bind do not undo
// it, a release's flush is restored at once, and renewals cause no churn.
func TestDHCPClientBlackholeAndPin(t *testing.T) {
	rg := newDHCPRig(t, "86:00:00:7a:02:02")
	client := rg.startDHCPClient(t)
	require.Equal(t, rg.priv+" via 10.0.0.1", rg.metadataVia(t), "the DHCP server's black hole is in place before hc-agent starts")

	n1 := withMAC(nwTest1(), "86:00:00:7a:02:02")
	start := time.Now()
	h := &countingNL{nlHandle: rg.host.h}
	rr := startReconcilerWith(t, rg.host, h, []metadata.PrivateNetwork{n1}, Options{PinMetadataRoute: true, PollInterval: time.Hour})
	t.Logf("black hole pinned %v after start", time.Since(start).Round(time.Millisecond))
	require.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t), "pinned by the first reconcile")
	configured := rg.host.state(t, rg.names)
	t.Logf("configured:\n%s", configured)

	// Renewals: dhclient turns the equal address lease-bound; nothing of
	// ours is written, and the pin holds.
	cc := countChanges(t, rg.host)
	writes := h.writes.Load()
	client.waitLines(t, "bound to "+dhcpLeaseIP, 4, 30*time.Second)
	assert.Equal(t, writes, h.writes.Load(), "no writes over three renewals; events: %v", cc.snapshot())
	assert.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t))
	t.Logf("netlink changes by anyone over three renewals: %d %v", len(cc.snapshot()), cc.snapshot())

	// Re-bind: a new dhclient process starts from its lease file (REBOOT),
	// and its exit hook adds the option 121 routes again.
	client.stop(t)
	client = rg.startDHCPClient(t)
	assert.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t), "re-bind does not undo the pin")
	assert.Equal(t, configured, rg.host.state(t, rg.names))

	// A failover group's private VIP on the same NIC, as its holder has it.
	vips := NewPrivateVIPs(rg.host.h)
	mac, _ := net.ParseMAC("86:00:00:7a:02:02")
	require.NoError(t, vips.AddVIP(t.Context(), mac, netip.MustParseAddr("10.0.0.9")))
	configured = rg.host.state(t, rg.names)
	require.Contains(t, configured, "addr 10.0.0.9/32 dev ens10\n")

	// Release: dhclient-script flushes the addresses labelled with the
	// device; ours (IF:hc) stay, the lease's address is restored at once.
	out, err := rg.dhclient(t, "-r").CombinedOutput()
	require.NoError(t, err, "dhclient -r: %s", out)
	<-client.done
	rg.host.waitState(t, rg.names, configured, "after dhclient -r")
	assert.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t))
	_, ok := cc.gap("addr new=false "+dhcpLeaseIP+" ", "addr new=true "+dhcpLeaseIP+" ")
	require.True(t, ok, "the release flushed the lease's address and it came back: %v", cc.snapshot())
	for _, e := range cc.snapshot() {
		assert.NotContains(t, e, "addr new=false 10.0.0.3", "alias IPs (label IF:hc) survive the flush")
		assert.NotContains(t, e, "addr new=false 10.0.0.9", "private VIPs (label IF:hc) survive the flush")
	}
	has, err := vips.HasVIP(mac, netip.MustParseAddr("10.0.0.9"))
	require.NoError(t, err)
	assert.True(t, has, "the private VIP is still there")
	l, err := rg.host.h.LinkByName(rg.priv)
	require.NoError(t, err)
	owned := rr.r.Owned()
	assert.True(t, owned.Has(l.Attrs().HardwareAddr, netip.MustParsePrefix(dhcpLeaseIP+"/32")), "restored as ours")
}

// Without the pin the black hole is reported in the first reconcile, and a
// failed metadata read names the route (issue 13 item 1).
func TestDHCPClientBlackholeReported(t *testing.T) {
	rg := newDHCPRig(t, "86:00:00:7a:02:12")
	rg.startDHCPClient(t)
	src := &fakeSource{err: fmt.Errorf("i/o timeout")}
	r := New(Options{}, src, rg.host.h, slog.New(slog.DiscardHandler))
	res, err := r.ReconcileOnce(t.Context())
	assert.True(t, res.MetadataBlackholed)
	assert.EqualError(t, err, "read private networks from metadata: i/o timeout; a route sends 169.254.169.254 via 10.0.0.1 dev "+rg.priv+" (proto boot); set private_networks.pin_metadata_route: true")
}

// networkd runs systemd-networkd in the host namespace with a private /run
// and /etc/systemd/network holding one .network file for the private NIC.
func (rg *dhcpRig) networkd(t *testing.T, mac string) *watchedProc {
	t.Helper()
	const bin = "/lib/systemd/systemd-networkd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("skipping: systemd-networkd not installed (package systemd)")
	}
	d := rg.dir
	for _, sub := range []string{"run", "etc-networkd"} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, sub), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(d, "etc-networkd", "10-private.network"), []byte(`[Match]
MACAddress=`+mac+`

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
UseHostname=no
UseDNS=no
UseNTP=no
UseDomains=no
`), 0o644))
	script := fmt.Sprintf(`set -e
mount --bind %[1]s/run /run
mkdir -p /run/systemd/netif/links /run/systemd/netif/leases /run/systemd/netif/lldp
chown -R systemd-network:systemd-network /run/systemd/netif
mount --bind %[1]s/etc-networkd /etc/systemd/network
# A sysfs of the test's namespace, read-only: networkd then does not wait
# for udev, which does not run here (as in a container).
exec nsenter --net=/proc/self/fd/3 -- sh -c 'mount -t sysfs -o ro sysfs /sys && exec %[2]s'`, d, bin)
	// A UTS namespace too, so that the hostname of the host is safe.
	cmd := exec.Command("unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script)
	cmd.ExtraFiles = []*os.File{nsFile(t, rg.host.ns)}
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_LEVEL=debug")
	return startProc(t, "systemd-networkd", cmd)
}

// TestNetworkdBlackholeAndPin: systemd-networkd adds the DHCP routes with
// proto dhcp metric 1024 and re-adds the black hole at every renewal; the
// pin (metric 0) keeps winning and renewals cause no write of ours. A
// networkd restart drops the foreign addresses on the NIC it manages (our
// alias IPs): they are restored.
func TestNetworkdBlackholeAndPin(t *testing.T) {
	const mac = "86:00:00:7a:02:22"
	rg := newDHCPRig(t, mac)
	nd := rg.networkd(t, mac)
	waitFor(t, 30*time.Second, func() bool { return rg.metadataVia(t) == rg.priv+" via 10.0.0.1" },
		func() string { return "networkd installs the black hole:\n" + nd.output() })

	n1 := withMAC(nwTest1(), mac)
	h := &countingNL{nlHandle: rg.host.h}
	start := time.Now()
	startReconcilerWith(t, rg.host, h, []metadata.PrivateNetwork{n1}, Options{PinMetadataRoute: true, PollInterval: time.Hour})
	t.Logf("black hole pinned %v after start", time.Since(start).Round(time.Millisecond))
	require.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t))
	configured := rg.host.state(t, rg.names)
	t.Logf("configured:\n%s", configured)

	writes := h.writes.Load()
	acks := strings.Count(nd.output(), "DHCPv4 client: ACK")
	nd.waitLines(t, "DHCPv4 client: ACK", acks+3, 30*time.Second)
	assert.Equal(t, writes, h.writes.Load(), "no writes of ours over three renewals")
	assert.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t), "the pin wins over networkd's re-added route")
	assert.Equal(t, configured, rg.host.state(t, rg.names))

	// A networkd restart.
	nd.stop(t)
	nd = rg.networkd(t, mac)
	nd.waitLines(t, "DHCPv4 address "+dhcpLeaseIP, 1, 30*time.Second)
	rg.host.waitState(t, rg.names, configured, "after a networkd restart")
	assert.Equal(t, rg.pub+pinnedVia, rg.metadataVia(t))
}

// waitFor polls cond every 10 ms and fails the test with what() after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("not within %v: %s", timeout, what())
		}
	}
}
