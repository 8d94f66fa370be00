package netconf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// KernelEvents hears the kernel's link, address (IPv4 and IPv6) and IPv4
// route events of one network namespace on one netlink socket, read by one
// goroutine, and hands them to the Reconciler and the AddressRestorer as
// the updates netlink's subscriptions give.
//
// netlink.LinkSubscribe, AddrSubscribe and RouteSubscribe open a socket
// each and read it in a goroutine of their own with a 64 KiB receive
// buffer on its stack; the agent's four (the restorer had an address
// subscription of its own) held about 0.4 MiB of an idle agent's ~5.3 MiB
// of anonymous memory (issue 14). Here the buffer is on the heap, where
// only the pages a message reaches are ever touched.
//
// The socket opens with the first subscription and closes when the last
// one's done channel closes. A subscription's channel is closed when its
// done channel closes, or, for all of them, when the socket fails (the
// kernel dropped events because the socket's buffer was full, for
// example): their owners subscribe again and treat it as lost events, as
// they do with netlink's subscriptions.
type KernelEvents struct {
	ns *netns.NsHandle // nil: the current namespace

	mu   sync.Mutex
	sock *os.File // nil while no one subscribes
	subs []*eventSub
}

// NewKernelEvents returns the event source of namespace ns (nil: the
// current one). Nothing is opened until the first subscription.
func NewKernelEvents(ns *netns.NsHandle) *KernelEvents {
	return &KernelEvents{ns: ns}
}

// eventGroups are the multicast groups KernelEvents joins: what the
// Reconciler and the AddressRestorer act on. IPv6 routes are left out:
// the Reconciler's routes are IPv4, and the restorer watches floating
// IPv6 addresses, whose routes come and go with them.
var eventGroups = []uint{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV4_ROUTE}

// eventBufSize is the receive buffer: one datagram of notifications, as
// large as netlink's.
const eventBufSize = 64 << 10

// eventSub is one subscription: deliver sends a message of its kind,
// parsed, to its channel (others it ignores) and returns the parse error.
type eventSub struct {
	deliver func(m syscall.NetlinkMessage) error
	onError func(error)
	done    <-chan struct{}
	close   func()

	mu    sync.Mutex    // held while sending and closing
	ended chan struct{} // closed with the channel
}

// send delivers m unless the subscription has ended; it blocks until the
// subscriber takes it or the subscription's done channel closes.
func (s *eventSub) send(m syscall.NetlinkMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ended:
		return
	default:
	}
	if err := s.deliver(m); err != nil && s.onError != nil {
		s.onError(err)
	}
}

// end closes the subscription's channel once.
func (s *eventSub) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ended:
	default:
		s.close()
		close(s.ended)
	}
}

// Links returns a SubscribeFunc of link updates; onError (may be nil) hears
// of messages that do not parse and of the socket failing.
func (k *KernelEvents) Links(onError func(error)) SubscribeFunc {
	return subscriber(k, unix.RTM_NEWLINK, unix.RTM_DELLINK, parseLinkUpdate, onError)
}

// Addrs returns an AddrSubscribeFunc of IPv4 and IPv6 address updates.
func (k *KernelEvents) Addrs(onError func(error)) AddrSubscribeFunc {
	return subscriber(k, unix.RTM_NEWADDR, unix.RTM_DELADDR, parseAddrUpdate, onError)
}

// Routes returns a RouteSubscribeFunc of IPv4 route updates.
func (k *KernelEvents) Routes(onError func(error)) RouteSubscribeFunc {
	return subscriber(k, unix.RTM_NEWROUTE, unix.RTM_DELROUTE, parseRouteUpdate, onError)
}

// subscriber returns the subscribe function of the messages of types
// newType and delType, parsed by parse.
func subscriber[T any](k *KernelEvents, newType, delType uint16, parse func(syscall.NetlinkMessage) (T, error),
	onError func(error)) func(chan<- T, <-chan struct{}) error {
	return func(ch chan<- T, done <-chan struct{}) error {
		return k.subscribe(&eventSub{
			deliver: func(m syscall.NetlinkMessage) error {
				if m.Header.Type != newType && m.Header.Type != delType {
					return nil
				}
				u, err := parse(m)
				if err != nil {
					return err
				}
				select {
				case ch <- u:
				case <-done:
				}
				return nil
			},
			onError: onError, done: done, close: func() { close(ch) },
		})
	}
}

// subscribe adds s, opening the socket if it is the first, and ends s when
// its done channel closes (unless a failure of the socket ended it first).
func (k *KernelEvents) subscribe(s *eventSub) error {
	s.ended = make(chan struct{})
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		f, err := k.open()
		if err != nil {
			return fmt.Errorf("subscribe to kernel events: %w", err)
		}
		k.sock = f
		go k.read(f)
	}
	k.subs = append(k.subs, s)
	go func() {
		select {
		case <-s.done:
			k.unsubscribe(s)
		case <-s.ended:
		}
	}()
	return nil
}

// unsubscribe removes s, closes the socket when no subscription is left,
// and then ends s.
func (k *KernelEvents) unsubscribe(s *eventSub) {
	k.mu.Lock()
	for i, x := range k.subs {
		if x == s {
			k.subs = append(k.subs[:i], k.subs[i+1:]...)
			break
		}
	}
	if len(k.subs) == 0 && k.sock != nil {
		k.sock.Close()
		k.sock = nil
	}
	k.mu.Unlock()
	s.end()
}

// open opens a netlink socket in k's namespace joined to eventGroups, as a
// pollable file of its own: netlink opens and binds it (in the namespace),
// and a duplicate of its descriptor, which keeps the socket and its groups,
// is read here with a buffer on the heap.
func (k *KernelEvents) open() (*os.File, error) {
	newNs, curNs := netns.None(), netns.None()
	if k.ns != nil {
		newNs = *k.ns
	}
	s, err := nl.SubscribeAt(newNs, curNs, unix.NETLINK_ROUTE, eventGroups...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	fd, err := unix.FcntlInt(uintptr(s.GetFd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate netlink socket: %w", err)
	}
	// The descriptor is non-blocking (netlink made it so), which makes the
	// file pollable: a read waits in the runtime's poller, not in a thread.
	return os.NewFile(uintptr(fd), "netlink-events"), nil
}

// read hands the messages of f to the subscriptions until f fails or is
// closed. A failure ends every subscription.
func (k *KernelEvents) read(f *os.File) {
	buf := make([]byte, eventBufSize)
	for {
		msgs, err := receive(f, buf)
		if err != nil {
			k.fail(f, err)
			return
		}
		k.mu.Lock()
		subs := append([]*eventSub(nil), k.subs...)
		k.mu.Unlock()
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
				if errno := int32(nl.NativeEndian().Uint32(m.Data[:4])); errno != 0 {
					k.fail(f, fmt.Errorf("netlink error message: %w", syscall.Errno(-errno)))
					return
				}
				continue
			}
			for _, s := range subs {
				s.send(m)
			}
		}
	}
}

// receive reads one datagram from f into buf and parses a copy of its
// messages. Only the kernel's messages are kept.
func receive(f *os.File, buf []byte) ([]syscall.NetlinkMessage, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		n     int
		from  unix.Sockaddr
		rerr  error
		trunc bool
	)
	err = rc.Read(func(fd uintptr) bool {
		var flags int
		n, _, flags, from, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
		trunc = flags&unix.MSG_TRUNC != 0
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	if trunc {
		return nil, errors.New("netlink message larger than the receive buffer")
	}
	if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != nl.PidKernel {
		return nil, nil // not the kernel's: no news
	}
	// The updates keep slices of the messages (addresses, names), and buf
	// is read into again: they get a copy.
	return syscall.ParseNetlinkMessage(append([]byte(nil), buf[:n]...))
}

// fail ends every subscription after f failed, unless f was closed because
// no one subscribes any more, and tells each of it.
func (k *KernelEvents) fail(f *os.File, err error) {
	k.mu.Lock()
	if k.sock != f {
		k.mu.Unlock()
		return // closed by unsubscribe: a clean stop
	}
	k.sock.Close()
	k.sock = nil
	subs := k.subs
	k.subs = nil
	k.mu.Unlock()
	err = fmt.Errorf("kernel events: %w", err)
	for _, s := range subs {
		if s.onError != nil {
			s.onError(err)
		}
		s.end()
	}
}

// parseLinkUpdate parses an RTM_NEWLINK or RTM_DELLINK message.
func parseLinkUpdate(m syscall.NetlinkMessage) (netlink.LinkUpdate, error) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return netlink.LinkUpdate{}, fmt.Errorf("link message of %d bytes", len(m.Data))
	}
	hdr := unix.NlMsghdr(m.Header)
	link, err := netlink.LinkDeserialize(&hdr, m.Data)
	if err != nil {
		return netlink.LinkUpdate{}, fmt.Errorf("parse link message: %w", err)
	}
	return netlink.LinkUpdate{IfInfomsg: *nl.DeserializeIfInfomsg(m.Data), Header: hdr, Link: link}, nil
}

// parseAddrUpdate parses an RTM_NEWADDR or RTM_DELADDR message the way
// netlink's address subscription does (which does not export its parser):
// the local address when there is one, else IFA_ADDRESS.
func parseAddrUpdate(m syscall.NetlinkMessage) (netlink.AddrUpdate, error) {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return netlink.AddrUpdate{}, fmt.Errorf("address message of %d bytes", len(m.Data))
	}
	msg := nl.DeserializeIfAddrmsg(m.Data)
	attrs, err := routeAttrs(m.Data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return netlink.AddrUpdate{}, fmt.Errorf("parse address message: %w", err)
	}
	u := netlink.AddrUpdate{
		LinkIndex: int(msg.Index), Scope: int(msg.Scope), Flags: int(msg.Flags),
		NewAddr: m.Header.Type == unix.RTM_NEWADDR,
	}
	var local, addr []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			local = a.Value
		case unix.IFA_ADDRESS:
			addr = a.Value
		case unix.IFA_FLAGS:
			if len(a.Value) >= 4 {
				u.Flags = int(nl.NativeEndian().Uint32(a.Value))
			}
		case unix.IFA_CACHEINFO:
			if len(a.Value) >= unix.SizeofIfaCacheinfo {
				ci := nl.DeserializeIfaCacheInfo(a.Value)
				u.PreferedLft, u.ValidLft = int(ci.Prefered), int(ci.Valid)
			}
		}
	}
	ip := addr
	if local != nil {
		ip = local
	}
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return netlink.AddrUpdate{}, fmt.Errorf("address message without an address (%d bytes)", len(ip))
	}
	if int(msg.Prefixlen) > 8*len(ip) {
		return netlink.AddrUpdate{}, fmt.Errorf("address message with prefix length %d", msg.Prefixlen)
	}
	u.LinkAddress = net.IPNet{IP: net.IP(ip), Mask: net.CIDRMask(int(msg.Prefixlen), 8*len(ip))}
	return u, nil
}

// parseRouteUpdate parses an RTM_NEWROUTE or RTM_DELROUTE message into the
// fields hc-agent looks at or logs (netlink does not export its parser):
// family, table, type, protocol, scope, destination, gateway, source,
// output link and metric. Multipath next hops and encapsulations are left
// out.
func parseRouteUpdate(m syscall.NetlinkMessage) (netlink.RouteUpdate, error) {
	if len(m.Data) < unix.SizeofRtMsg {
		return netlink.RouteUpdate{}, fmt.Errorf("route message of %d bytes", len(m.Data))
	}
	msg := nl.DeserializeRtMsg(m.Data)
	attrs, err := routeAttrs(m.Data[unix.SizeofRtMsg:])
	if err != nil {
		return netlink.RouteUpdate{}, fmt.Errorf("parse route message: %w", err)
	}
	u := netlink.RouteUpdate{
		Type: m.Header.Type, NlFlags: m.Header.Flags & (unix.NLM_F_REPLACE | unix.NLM_F_EXCL | unix.NLM_F_CREATE | unix.NLM_F_APPEND),
		Route: netlink.Route{
			Family: int(msg.Family), Table: int(msg.Table), Type: int(msg.Type), Tos: int(msg.Tos), Flags: int(msg.Flags),
			Protocol: netlink.RouteProtocol(msg.Protocol), Scope: netlink.Scope(msg.Scope),
		},
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_TABLE:
			if len(a.Value) >= 4 {
				u.Table = int(nl.NativeEndian().Uint32(a.Value))
			}
		case unix.RTA_DST:
			if n := len(a.Value); (n == net.IPv4len || n == net.IPv6len) && int(msg.Dst_len) <= 8*n {
				u.Dst = &net.IPNet{IP: net.IP(a.Value), Mask: net.CIDRMask(int(msg.Dst_len), 8*n)}
			}
		case unix.RTA_GATEWAY:
			u.Gw = net.IP(a.Value)
		case unix.RTA_PREFSRC:
			u.Src = net.IP(a.Value)
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				u.LinkIndex = int(nl.NativeEndian().Uint32(a.Value))
			}
		case unix.RTA_PRIORITY:
			if len(a.Value) >= 4 {
				u.Priority = int(nl.NativeEndian().Uint32(a.Value))
			}
		}
	}
	return u, nil
}

// routeAttrs splits b into its attributes (a struct rtattr, then the
// value, padded to 4 bytes; the last one's padding may be missing).
// syscall.ParseNetlinkRouteAttr and nl.ParseRouteAttr do the same but
// panic on an attribute whose padding runs past the end (found by
// FuzzParseAddrUpdate); the kernel never sends one, but a parser here
// does not panic on any input.
func routeAttrs(b []byte) ([]syscall.NetlinkRouteAttr, error) {
	var attrs []syscall.NetlinkRouteAttr
	for len(b) >= unix.SizeofRtAttr {
		n := int(nl.NativeEndian().Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil, fmt.Errorf("attribute of %d bytes where %d are left", n, len(b))
		}
		attrs = append(attrs, syscall.NetlinkRouteAttr{
			Attr:  syscall.RtAttr{Len: uint16(n), Type: nl.NativeEndian().Uint16(b[2:4])},
			Value: b[unix.SizeofRtAttr:n],
		})
		b = b[min((n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(b)):]
	}
	return attrs, nil
}
