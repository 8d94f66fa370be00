package netconf

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// addrMsg builds an address message: the ifaddrmsg, then attrs.
func addrMsg(typ uint16, family, prefix uint8, index uint32, attrs ...*nl.RtAttr) syscall.NetlinkMessage {
	msg := nl.NewIfAddrmsg(int(family))
	msg.Prefixlen, msg.Index, msg.Scope = prefix, index, unix.RT_SCOPE_UNIVERSE
	data := msg.Serialize()
	for _, a := range attrs {
		data = append(data, a.Serialize()...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}, Data: data}
}

// routeMsg builds a route message: the rtmsg (a unicast route of
// protocol boot, as nl.NewRtMsg makes it), then attrs.
func routeMsg(typ uint16, family, dstLen, table uint8, attrs ...*nl.RtAttr) syscall.NetlinkMessage {
	msg := nl.NewRtMsg()
	msg.Family, msg.Dst_len, msg.Table = family, dstLen, table
	data := msg.Serialize()
	for _, a := range attrs {
		data = append(data, a.Serialize()...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ, Flags: unix.NLM_F_CREATE | unix.NLM_F_ACK}, Data: data}
}

func ip4(s string) []byte { return net.ParseIP(s).To4() }

// parseCase is a case of a table test of a message parser.
type parseCase[T any] struct {
	name    string
	msg     syscall.NetlinkMessage
	want    T
	wantErr string
}

// runParseCases runs the cases against parse.
func runParseCases[T any](t *testing.T, parse func(syscall.NetlinkMessage) (T, error), cases []parseCase[T]) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.msg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
func ip6(s string) []byte { return net.ParseIP(s).To16() }

func TestParseAddrUpdate(t *testing.T) {
	cache := make([]byte, unix.SizeofIfaCacheinfo)
	nl.NativeEndian().PutUint32(cache[0:], 300) // preferred
	nl.NativeEndian().PutUint32(cache[4:], 600) // valid
	runParseCases(t, parseAddrUpdate, []parseCase[netlink.AddrUpdate]{
		{
			name: "IPv4 added: the local address",
			msg: addrMsg(unix.RTM_NEWADDR, unix.AF_INET, 24, 3,
				nl.NewRtAttr(unix.IFA_ADDRESS, ip4("10.0.0.9")), nl.NewRtAttr(unix.IFA_LOCAL, ip4("10.0.0.9")),
				nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(unix.IFA_F_PERMANENT)), nl.NewRtAttr(unix.IFA_CACHEINFO, cache)),
			want: netlink.AddrUpdate{LinkAddress: net.IPNet{IP: ip4("10.0.0.9"), Mask: net.CIDRMask(24, 32)}, LinkIndex: 3,
				Flags: unix.IFA_F_PERMANENT, PreferedLft: 300, ValidLft: 600, NewAddr: true},
		},
		{
			name: "IPv4 point-to-point: the local address, not the peer",
			msg: addrMsg(unix.RTM_DELADDR, unix.AF_INET, 32, 4,
				nl.NewRtAttr(unix.IFA_ADDRESS, ip4("10.0.0.1")), nl.NewRtAttr(unix.IFA_LOCAL, ip4("10.0.0.2"))),
			want: netlink.AddrUpdate{LinkAddress: net.IPNet{IP: ip4("10.0.0.2"), Mask: net.CIDRMask(32, 32)}, LinkIndex: 4},
		},
		{
			name: "IPv6 deleted: IFA_ADDRESS only",
			msg:  addrMsg(unix.RTM_DELADDR, unix.AF_INET6, 64, 2, nl.NewRtAttr(unix.IFA_ADDRESS, ip6("2001:db8::1"))),
			want: netlink.AddrUpdate{LinkAddress: net.IPNet{IP: ip6("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, LinkIndex: 2},
		},
		{
			name:    "shorter than an ifaddrmsg",
			msg:     syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWADDR}, Data: []byte{2, 24}},
			wantErr: "address message of 2 bytes",
		},
		{
			name:    "no address",
			msg:     addrMsg(unix.RTM_NEWADDR, unix.AF_INET, 24, 3, nl.NewRtAttr(unix.IFA_LABEL, []byte("eth0\x00"))),
			wantErr: "without an address",
		},
		{
			name:    "prefix longer than the address",
			msg:     addrMsg(unix.RTM_NEWADDR, unix.AF_INET, 33, 3, nl.NewRtAttr(unix.IFA_LOCAL, ip4("10.0.0.9"))),
			wantErr: "prefix length 33",
		},
		{
			name: "attribute cut short",
			msg: func() syscall.NetlinkMessage {
				m := addrMsg(unix.RTM_NEWADDR, unix.AF_INET, 24, 3, nl.NewRtAttr(unix.IFA_LOCAL, ip4("10.0.0.9")))
				m.Data = m.Data[:len(m.Data)-2]
				return m
			}(),
			wantErr: "parse address message",
		},
	})
}

func TestParseRouteUpdate(t *testing.T) {
	runParseCases(t, parseRouteUpdate, []parseCase[netlink.RouteUpdate]{
		{
			name: "main-table route via a gateway",
			msg: routeMsg(unix.RTM_NEWROUTE, unix.AF_INET, 16, unix.RT_TABLE_MAIN,
				nl.NewRtAttr(unix.RTA_DST, ip4("10.8.0.0")), nl.NewRtAttr(unix.RTA_GATEWAY, ip4("10.9.0.1")),
				nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(5)), nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(100)),
				nl.NewRtAttr(unix.RTA_PREFSRC, ip4("10.9.0.7"))),
			want: netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, NlFlags: unix.NLM_F_CREATE, Route: netlink.Route{
				Family: unix.AF_INET, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST, Table: unix.RT_TABLE_MAIN, Dst: &net.IPNet{IP: ip4("10.8.0.0"), Mask: net.CIDRMask(16, 32)},
				Gw: ip4("10.9.0.1"), LinkIndex: 5, Priority: 100, Src: ip4("10.9.0.7"),
			}},
		},
		{
			name: "a table above 255 is in RTA_TABLE",
			msg:  routeMsg(unix.RTM_DELROUTE, unix.AF_INET, 0, unix.RT_TABLE_COMPAT, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(1000))),
			want: netlink.RouteUpdate{Type: unix.RTM_DELROUTE, NlFlags: unix.NLM_F_CREATE, Route: netlink.Route{Family: unix.AF_INET, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST, Table: 1000}},
		},
		{
			name: "a destination of the wrong size is left out",
			msg:  routeMsg(unix.RTM_NEWROUTE, unix.AF_INET, 8, unix.RT_TABLE_MAIN, nl.NewRtAttr(unix.RTA_DST, []byte{10, 0})),
			want: netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, NlFlags: unix.NLM_F_CREATE, Route: netlink.Route{Family: unix.AF_INET, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST, Table: unix.RT_TABLE_MAIN}},
		},
		{
			name:    "shorter than an rtmsg",
			msg:     syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE}, Data: make([]byte, 11)},
			wantErr: "route message of 11 bytes",
		},
		{
			name: "attribute cut short",
			msg: func() syscall.NetlinkMessage {
				m := routeMsg(unix.RTM_NEWROUTE, unix.AF_INET, 16, unix.RT_TABLE_MAIN, nl.NewRtAttr(unix.RTA_DST, ip4("10.8.0.0")))
				m.Data = m.Data[:len(m.Data)-1]
				return m
			}(),
			wantErr: "parse route message",
		},
	})
}

func TestParseLinkUpdate(t *testing.T) {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 7
	data := msg.Serialize()
	data = append(data, nl.NewRtAttr(unix.IFLA_IFNAME, []byte("eth1\x00")).Serialize()...)
	data = append(data, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(1450)).Serialize()...)
	u, err := parseLinkUpdate(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK}, Data: data})
	require.NoError(t, err)
	assert.Equal(t, uint16(unix.RTM_NEWLINK), u.Header.Type)
	assert.Equal(t, int32(7), u.Index)
	assert.Equal(t, "eth1", u.Attrs().Name)
	assert.Equal(t, 1450, u.Attrs().MTU)

	_, err = parseLinkUpdate(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK}, Data: data[:10]})
	assert.ErrorContains(t, err, "link message of 10 bytes")
}

// FuzzParseAddrUpdate: the address parser never panics, and what it
// accepts is an IPv4 or IPv6 address with a mask of its size.
func FuzzParseAddrUpdate(f *testing.F) {
	for _, m := range []syscall.NetlinkMessage{
		addrMsg(unix.RTM_NEWADDR, unix.AF_INET, 24, 3, nl.NewRtAttr(unix.IFA_LOCAL, ip4("10.0.0.9"))),
		addrMsg(unix.RTM_DELADDR, unix.AF_INET6, 64, 2, nl.NewRtAttr(unix.IFA_ADDRESS, ip6("2001:db8::1")),
			nl.NewRtAttr(unix.IFA_CACHEINFO, make([]byte, 16))),
	} {
		f.Add(m.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseAddrUpdate(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWADDR}, Data: data})
		if err != nil {
			return
		}
		ones, bits := u.LinkAddress.Mask.Size()
		if bits != 8*len(u.LinkAddress.IP) || ones > bits || (bits != 32 && bits != 128) {
			t.Fatalf("parseAddrUpdate(%x) = %v with mask %d/%d", data, u.LinkAddress, ones, bits)
		}
	})
}

// FuzzParseRouteUpdate: the route parser never panics, and a destination
// it returns has a mask of its size.
func FuzzParseRouteUpdate(f *testing.F) {
	f.Add(routeMsg(unix.RTM_NEWROUTE, unix.AF_INET, 16, unix.RT_TABLE_MAIN,
		nl.NewRtAttr(unix.RTA_DST, ip4("10.8.0.0")), nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(5))).Data)
	f.Add(routeMsg(unix.RTM_DELROUTE, unix.AF_INET, 0, unix.RT_TABLE_COMPAT, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(1000))).Data)
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseRouteUpdate(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE}, Data: data})
		if err != nil || u.Dst == nil {
			return
		}
		ones, bits := u.Dst.Mask.Size()
		if bits != 8*len(u.Dst.IP) || ones > bits {
			t.Fatalf("parseRouteUpdate(%x): destination %v with mask %d/%d", data, u.Dst, ones, bits)
		}
	})
}
