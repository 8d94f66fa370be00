// Package keepalived runs the benchmark baseline: Debian's keepalived with
// unicast VRRP over the private network and a notify script that moves the
// floating IP with curl through the (simulated) Hetzner Cloud API and waits
// for the action, the way the usual guides set it up.
//
// Config and Script render the files; Start runs keepalived in a network
// namespace in the foreground, reports its state transitions from its log,
// and Kill or Stop end it by PID.
package keepalived

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is one server's keepalived.conf for a single VRRP instance. The
// zero values of the optional fields give the timers of the usual guides:
// advert_int 1, state BACKUP on every member and nopreempt, so that a
// returning member does not take the address back.
type Config struct {
	RouterID        string        // global_defs router_id, e.g. the server name
	Instance        string        // vrrp_instance name, default "hc"
	Interface       string        // private NIC VRRP runs on
	VirtualRouterID int           // default 51
	Priority        int           // default 100
	AdvertInt       time.Duration // default 1s; keepalived accepts sub-second values
	SrcIP           netip.Addr    // unicast_src_ip: this server's private IP
	Peers           []netip.Addr  // unicast_peer: the other servers' private IPs
	VIP             netip.Prefix  // the floating IP, configured by keepalived on VIPDevice
	VIPDevice       string        // public NIC that carries the floating IP
	NotifyMaster    string        // path of the notify script, called with argument "master"
	Preempt         bool          // default false (nopreempt)
}

// Render returns the keepalived.conf text.
func (c Config) Render() (string, error) {
	if c.Interface == "" || !c.SrcIP.IsValid() || len(c.Peers) == 0 {
		return "", fmt.Errorf("render keepalived config %q: interface, source address and peers are required", c.RouterID)
	}
	if !c.VIP.IsValid() || c.VIPDevice == "" {
		return "", fmt.Errorf("render keepalived config %q: virtual address and its device are required", c.RouterID)
	}
	inst := c.Instance
	if inst == "" {
		inst = "hc"
	}
	vrid := c.VirtualRouterID
	if vrid == 0 {
		vrid = 51
	}
	prio := c.Priority
	if prio == 0 {
		prio = 100
	}
	advert := c.AdvertInt
	if advert == 0 {
		advert = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n")
	if c.RouterID != "" {
		fmt.Fprintf(&b, "  router_id %s\n", c.RouterID)
	}
	// Naming the script user avoids keepalived's warning about the missing
	// keepalived_script user; max_auto_priority gives the VRRP process
	// realtime priority as keepalived itself recommends.
	fmt.Fprintf(&b, "  script_user root\n  enable_script_security\n  max_auto_priority -1\n}\n\n")
	fmt.Fprintf(&b, "vrrp_instance %s {\n", inst)
	fmt.Fprintf(&b, "  state BACKUP\n")
	fmt.Fprintf(&b, "  interface %s\n", c.Interface)
	fmt.Fprintf(&b, "  virtual_router_id %d\n", vrid)
	fmt.Fprintf(&b, "  priority %d\n", prio)
	fmt.Fprintf(&b, "  advert_int %s\n", formatSeconds(advert))
	if !c.Preempt {
		fmt.Fprintf(&b, "  nopreempt\n")
	}
	fmt.Fprintf(&b, "  unicast_src_ip %s\n", c.SrcIP)
	fmt.Fprintf(&b, "  unicast_peer {\n")
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "    %s\n", p)
	}
	fmt.Fprintf(&b, "  }\n")
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s dev %s\n  }\n", c.VIP, c.VIPDevice)
	if c.NotifyMaster != "" {
		fmt.Fprintf(&b, "  notify_master %q\n", c.NotifyMaster+" master")
	}
	fmt.Fprintf(&b, "}\n")
	return b.String(), nil
}

// formatSeconds prints d in seconds the way keepalived reads advert_int:
// an integer when whole, otherwise with up to six decimals.
func formatSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d", d/time.Second)
	}
	return strings.TrimRight(fmt.Sprintf("%.6f", d.Seconds()), "0")
}
