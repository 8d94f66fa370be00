package floatingip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipTransport is memberlist's transport for a group: UDP packets and
// TCP streams on one address, as memberlist's NetTransport, but without
// its per-packet garbage. NetTransport reads every UDP packet into a fresh
// 64 KiB buffer and hands that buffer to memberlist, which keeps it until
// the packet is handled: in an idle group of three that was 69 % of all
// bytes the agent allocated, and most of its garbage collections (issue
// 14). gossipTransport reads into one buffer that it reuses and hands
// memberlist an exact-size copy of each packet (a few hundred bytes). It
// also sends to IP:port addresses without resolving them anew for every
// packet. Everything else (the label and encryption layers, probes,
// push/pull over TCP) is memberlist's own.
type gossipTransport struct {
	udp    *net.UDPConn
	tcp    *net.TCPListener
	logger *log.Logger

	packets chan *memberlist.Packet
	streams chan net.Conn

	shutdown atomic.Bool
	done     chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)

const (
	// gossipMaxPacket is the largest UDP payload read, as NetTransport's.
	gossipMaxPacket = 65536
	// gossipRecvBuf is the socket receive buffer asked for (halved until
	// the kernel accepts it), as NetTransport's: it is kernel memory, not
	// the process's.
	gossipRecvBuf = 2 << 20
)

// newGossipTransport listens on bind:port for TCP and UDP (port 0: one
// free port for both). logger gets memberlist-style "[ERR]" lines.
func newGossipTransport(bind string, port int, logger *log.Logger) (*gossipTransport, error) {
	ip := net.ParseIP(bind)
	if bind != "" && ip == nil {
		return nil, fmt.Errorf("gossip transport: bind address %q is not an IP address", bind)
	}
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("gossip transport: listen tcp %s: %w", net.JoinHostPort(bind, fmt.Sprint(port)), err)
	}
	if port == 0 {
		port = tcp.Addr().(*net.TCPAddr).Port
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("gossip transport: listen udp %s: %w", net.JoinHostPort(bind, fmt.Sprint(port)), err)
	}
	if err := setRecvBuffer(udp, gossipRecvBuf); err != nil {
		tcp.Close()
		udp.Close()
		return nil, fmt.Errorf("gossip transport: udp receive buffer: %w", err)
	}
	t := &gossipTransport{
		udp: udp, tcp: tcp, logger: logger,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	t.wg.Add(2)
	go t.readPackets()   // exits on Shutdown
	go t.acceptStreams() // exits on Shutdown
	return t, nil
}

// setRecvBuffer asks for size bytes of receive buffer, halving until the
// kernel accepts.
func setRecvBuffer(c *net.UDPConn, size int) error {
	var err error
	for ; size > 0; size /= 2 {
		if err = c.SetReadBuffer(size); err == nil {
			return nil
		}
	}
	return err
}

// port is the port both listeners are bound to.
func (t *gossipTransport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr returns ip:port if ip is set, else the bound address
// and port. A group binds to its private address; a wildcard bind needs an
// explicit advertise address (NetTransport would guess a private IP of
// some interface, which on a server with several networks may be the
// wrong one).
func (t *gossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("gossip transport: advertise address %q is not an IP address", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	bound := t.tcp.Addr().(*net.TCPAddr).IP
	if bound.IsUnspecified() {
		return nil, 0, errors.New("gossip transport: bound to a wildcard address and no advertise address given")
	}
	if a4 := bound.To4(); a4 != nil {
		bound = a4
	}
	return bound, t.port(), nil
}

// WriteTo sends one packet to addr (host:port).
func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one packet to a.Addr. An IP:port is parsed without
// allocating; anything else is resolved as NetTransport does.
func (t *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ap, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", a.Addr)
		if rerr != nil {
			return time.Time{}, rerr
		}
		ap = ua.AddrPort()
	}
	_, err = t.udp.WriteToUDPAddrPort(b, ap)
	// As NetTransport: the time after the write, which underestimates the
	// RTT a little rather than adding scheduling delay to it.
	return time.Now(), err
}

// PacketCh delivers the packets received.
func (t *gossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream to addr.
func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a.Addr.
func (t *gossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", a.Addr)
}

// StreamCh delivers the streams accepted.
func (t *gossipTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both listeners and waits for their goroutines; a
// packet or stream that memberlist did not take by then is dropped.
// memberlist calls it before it stops its own readers. Calls after the
// first do nothing.
func (t *gossipTransport) Shutdown() error {
	if !t.shutdown.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

// readPackets reads UDP packets until Shutdown. The read buffer is reused;
// each packet memberlist gets is its own copy, since memberlist keeps it
// beyond the next read (handoff queue).
func (t *gossipTransport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, gossipMaxPacket)
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		ts := time.Now()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: Error reading UDP packet: %v", err)
			continue
		}
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) %s", n, from)
			continue
		}
		p := &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: net.UDPAddrFromAddrPort(from), Timestamp: ts}
		select {
		case t.packets <- p:
		case <-t.done:
		}
	}
}

// acceptStreams accepts TCP connections until Shutdown, backing off after
// errors as NetTransport does.
func (t *gossipTransport) acceptStreams() {
	defer t.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			t.logger.Printf("[ERR] memberlist: Error accepting TCP connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case t.streams <- c:
		case <-t.done:
			c.Close()
		}
	}
}
