package floatingip

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi"
)

// FloatingIP is a floating IP as the API reports it (cloudapi's type:
// package floatingip owns only the small Cloud interface it consumes).
type FloatingIP = cloudapi.FloatingIP

// Action is an asynchronous API action, e.g. an assignment.
type Action = cloudapi.Action

// Cloud is the part of the Hetzner Cloud API that floating IPs need.
// *cloudapi.Client implements it; tests use a stateful fake. Calls made
// while failing over carry a context marked by GroupDeps.Urgent.
type Cloud interface {
	// GetFloatingIP reads one floating IP by ID or name.
	GetFloatingIP(ctx context.Context, idOrName string) (FloatingIP, error)
	// ListFloatingIPs lists the floating IPs matching a label selector ("" is all).
	ListFloatingIPs(ctx context.Context, selector string) ([]FloatingIP, error)
	// Assign assigns a floating IP to a server and returns the action.
	Assign(ctx context.Context, fipID, serverID int64) (Action, error)
	// WaitAction waits until the action is no longer running. For an
	// action that ended in "error" it may also return an error (cloudapi
	// does); the returned Action's Status tells a failed action from a
	// failed wait.
	WaitAction(ctx context.Context, actionID int64) (Action, error)
}

// Host configures the addresses of floating IPs on the public NIC. Set is
// declarative per owner: afterwards exactly prefixes are configured for owner,
// and addresses configured by someone else are never touched.
// netconf.FloatingIPApplier implements it.
type Host interface {
	Set(ctx context.Context, owner string, prefixes []netip.Prefix) error
}

// HostPrefix returns the address to configure for f: IPv4 as /32; IPv6 as
// the network's address with host's interface ID (config's default ::1)
// as /64.
func HostPrefix(f FloatingIP, host netip.Addr) (netip.Prefix, error) {
	switch {
	case f.Type == "ipv4" || (f.Type == "" && f.IP.Is4()):
		if !f.IP.Is4() {
			return netip.Prefix{}, fmt.Errorf("floating ip %d: type ipv4 with address %v", f.ID, f.IP)
		}
		return netip.PrefixFrom(f.IP, 32), nil
	case f.Type == "ipv6" || (f.Type == "" && f.IP.Is6()):
		netw := f.Network
		if !netw.IsValid() {
			netw = netip.PrefixFrom(f.IP, 64)
		}
		if !netw.Addr().Is6() || netw.Bits() > 64 {
			return netip.Prefix{}, fmt.Errorf("floating ip %d: invalid ipv6 network %v", f.ID, netw)
		}
		if !host.Is6() {
			return netip.Prefix{}, fmt.Errorf("floating ip %d: ipv6 host %v is not ipv6", f.ID, host)
		}
		n := netw.Masked().Addr().As16()
		h := host.As16()
		for i := 8; i < 16; i++ {
			n[i] = h[i]
		}
		return netip.PrefixFrom(netip.AddrFrom16(n), 64), nil
	default:
		return netip.Prefix{}, fmt.Errorf("floating ip %d: unknown type %q", f.ID, f.Type)
	}
}

// Role is a member's role in a group.
type Role string

// Roles of a group member.
const (
	RoleStandby      Role = "standby"
	RoleCandidate    Role = "candidate"
	RoleHolder       Role = "holder"
	RoleSteppingDown Role = "stepping-down"
)

// MoveRecord describes one attempt to move a group's floating IPs here.
type MoveRecord struct {
	At       time.Time     `json:"at"`
	From     int64         `json:"from"`
	To       int64         `json:"to"`
	Duration time.Duration `json:"duration_ns"`
	Result   MoveResult    `json:"result"`
	Error    string        `json:"error,omitempty"`
}

// Hooks are optional callbacks for metrics. They are called from the group's
// goroutine and must not block.
type Hooks struct {
	RoleChanged    func(group string, role Role)
	Moved          func(group string, m MoveRecord)
	MembersChanged func(group string, alive, healthy int)
	FIPChanged     func(group string, fip FloatingIP, configuredHere, assignedHere bool)
}
