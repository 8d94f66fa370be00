package floatingip

import (
	"bytes"
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestTransport(t testing.TB) *gossipTransport {
	t.Helper()
	tr, err := newGossipTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

func (t *gossipTransport) addr() string { return "127.0.0.1:" + strconv.Itoa(t.port()) }

func recvPacket(t *testing.T, tr *gossipTransport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10 s")
		return nil
	}
}

func TestGossipTransportPackets(t *testing.T) {
	tr := newTestTransport(t)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()

	// Each packet memberlist gets is its own: a later, shorter packet read
	// into the same buffer must not change an earlier one.
	sent := [][]byte{bytes.Repeat([]byte("a"), 1400), []byte("bb"), {0}}
	var got []*memberlist.Packet
	for _, b := range sent {
		_, err := peer.WriteTo(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tr.port()})
		require.NoError(t, err)
		got = append(got, recvPacket(t, tr))
	}
	for i, p := range got {
		assert.Equal(t, sent[i], p.Buf, "packet %d", i)
		assert.Equal(t, len(sent[i]), len(p.Buf), "packet %d", i)
		assert.LessOrEqual(t, cap(p.Buf), 2*len(sent[i])+16, "packet %d: an exact-size copy, not the read buffer", i)
		assert.Equal(t, peer.LocalAddr().String(), p.From.String(), "packet %d", i)
		assert.False(t, p.Timestamp.IsZero(), "packet %d", i)
	}
}

func TestGossipTransportWriteTo(t *testing.T) {
	tr := newTestTransport(t)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	port := strconv.Itoa(peer.LocalAddr().(*net.UDPAddr).Port)

	for _, tc := range []struct {
		name, addr string
		wantErr    bool
	}{
		{"ip and port", "127.0.0.1:" + port, false},
		{"host name", "localhost:" + port, false},
		{"no port", "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte("ping " + tc.name)
			ts, err := tr.WriteToAddress(msg, memberlist.Address{Addr: tc.addr, Name: "2"})
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.False(t, ts.IsZero())
			buf := make([]byte, 100)
			require.NoError(t, peer.SetReadDeadline(time.Now().Add(10*time.Second)))
			n, from, err := peer.ReadFrom(buf)
			require.NoError(t, err)
			assert.Equal(t, msg, buf[:n])
			assert.Equal(t, tr.addr(), from.String())
		})
	}
}

func TestGossipTransportStreams(t *testing.T) {
	a, b := newTestTransport(t), newTestTransport(t)
	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.addr(), Name: "2"}, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	var s net.Conn
	select {
	case s = <-b.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("no stream within 10 s")
	}
	defer s.Close()
	_, err = c.Write([]byte("push/pull"))
	require.NoError(t, err)
	buf := make([]byte, 9)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "push/pull", string(buf))
}

func TestGossipTransportShutdown(t *testing.T) {
	tr, err := newGossipTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	require.NoError(t, err)
	port := tr.port()
	// A packet nobody reads keeps the reader blocked on its channel;
	// Shutdown must still end it.
	peer, err := net.Dial("udp", tr.addr())
	require.NoError(t, err)
	defer peer.Close()
	_, err = peer.Write([]byte("unread"))
	require.NoError(t, err)
	// The same for a stream nobody takes.
	c, err := net.Dial("tcp", tr.addr())
	require.NoError(t, err)
	defer c.Close()

	require.NoError(t, tr.Shutdown())
	assert.NoError(t, tr.Shutdown(), "a second Shutdown")
	// Both ports are free again.
	again, err := newGossipTransport("127.0.0.1", port, log.New(io.Discard, "", 0))
	require.NoError(t, err, "listen on the port again")
	require.NoError(t, again.Shutdown())
}

func TestGossipTransportListenErrors(t *testing.T) {
	tr := newTestTransport(t)
	for _, tc := range []struct {
		name string
		bind string
		port int
	}{
		{"not an IP", "server-1", 0},
		{"port in use", "127.0.0.1", tr.port()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newGossipTransport(tc.bind, tc.port, log.New(io.Discard, "", 0))
			if !assert.Error(t, err) {
				_ = got.Shutdown()
			}
		})
	}
}

func TestGossipTransportFinalAdvertiseAddr(t *testing.T) {
	bound := newTestTransport(t)
	wild, err := newGossipTransport("", 0, log.New(io.Discard, "", 0))
	require.NoError(t, err)
	defer wild.Shutdown()
	for _, tc := range []struct {
		name     string
		tr       *gossipTransport
		ip       string
		port     int
		wantIP   string
		wantPort int
		wantErr  bool
	}{
		{"given address", bound, "10.0.0.2", 7946, "10.0.0.2", 7946, false},
		{"bound address", bound, "", 7946, "127.0.0.1", bound.port(), false},
		{"bad given address", bound, "not-an-ip", 7946, "", 0, true},
		{"wildcard without address", wild, "", 7946, "", 0, true},
		{"wildcard with address", wild, "10.0.0.3", 7000, "10.0.0.3", 7000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, port, err := tc.tr.FinalAdvertiseAddr(tc.ip, tc.port)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantIP, ip.String())
			assert.Len(t, ip, net.IPv4len, "IPv4 in its 4-byte form, as memberlist encodes it")
			assert.Equal(t, tc.wantPort, port)
		})
	}
}

// BenchmarkTransportPacket sends a gossip-sized packet to a transport and
// takes it from PacketCh: B/op and allocs/op are what each received
// packet costs the garbage collector (issue 14).
func BenchmarkTransportPacket(b *testing.B) {
	for _, tc := range []struct {
		name string
		new  func(b *testing.B) (memberlist.Transport, int)
	}{
		{"memberlist.NetTransport", func(b *testing.B) (memberlist.Transport, int) {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
			require.NoError(b, err)
			return nt, nt.GetAutoBindPort()
		}},
		{"gossipTransport", func(b *testing.B) (memberlist.Transport, int) {
			tr, err := newGossipTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
			require.NoError(b, err)
			return tr, tr.port()
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr, port := tc.new(b)
			defer tr.Shutdown()
			peer, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
			require.NoError(b, err)
			defer peer.Close()
			msg := bytes.Repeat([]byte{1}, 300)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := peer.Write(msg); err != nil {
					b.Fatal(err)
				}
				<-tr.PacketCh()
			}
		})
	}
}
