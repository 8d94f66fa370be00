package metadata_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
)

// The reference's example documents, byte for byte.
const (
	refSummary = `availability-zone: hel1-dc2
hostname: my-server
instance-id: 42
public-ipv4: 1.2.3.4
region: eu-central
`
	refPrivateNetworks = `- ip: 10.0.0.2
  alias_ips: [10.0.0.3, 10.0.0.4]
  interface_num: 1
  mac_address: 86:00:00:2a:7d:e0
  network_id: 1234
  network_name: nw-test1
  network: 10.0.0.0/8
  subnet: 10.0.0.0/24
  gateway: 10.0.0.1
- ip: 192.168.0.2
  alias_ips: []
  interface_num: 2
  mac_address: 86:00:00:2a:7d:e1
  network_id: 4321
  network_name: nw-test2
  network: 192.168.0.0/16
  subnet: 192.168.0.0/24
  gateway: 192.168.0.1
`
	// realSummary carries the keys real servers send beyond the reference.
	realSummary = `availability-zone: fsn1-dc14
hostname: web-1
instance-id: 12345678
local-ipv4: ''
network-config:
  config:
  - mac_address: 96:00:01:02:03:04
    name: eth0
    subnets:
    - ipv4: true
      type: dhcp
    type: physical
  version: 1
public-ipv4: 5.6.7.8
public-keys:
- ssh-ed25519 AAAA... user@host
region: eu-central
`
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func refSummaryValue() metadata.Summary {
	return metadata.Summary{
		Hostname:         "my-server",
		InstanceID:       42,
		PublicIPv4:       netip.MustParseAddr("1.2.3.4"),
		AvailabilityZone: "hel1-dc2",
		Region:           "eu-central",
	}
}

func refNetworks() []metadata.PrivateNetwork {
	return []metadata.PrivateNetwork{
		{
			IP:           netip.MustParseAddr("10.0.0.2"),
			AliasIPs:     []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")},
			InterfaceNum: 1,
			MACAddress:   mustMAC("86:00:00:2a:7d:e0"),
			NetworkID:    1234,
			NetworkName:  "nw-test1",
			Network:      netip.MustParsePrefix("10.0.0.0/8"),
			Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
			Gateway:      netip.MustParseAddr("10.0.0.1"),
		},
		{
			IP:           netip.MustParseAddr("192.168.0.2"),
			InterfaceNum: 2,
			MACAddress:   mustMAC("86:00:00:2a:7d:e1"),
			NetworkID:    4321,
			NetworkName:  "nw-test2",
			Network:      netip.MustParsePrefix("192.168.0.0/16"),
			Subnet:       netip.MustParsePrefix("192.168.0.0/24"),
			Gateway:      netip.MustParseAddr("192.168.0.1"),
		},
	}
}

// wantMalformed checks that err is a KindMalformed *Error for path and field.
func wantMalformed(t *testing.T, err error, path, field string) {
	t.Helper()
	require.Error(t, err)
	var e *metadata.Error
	require.True(t, errors.As(err, &e), "error %v is %T, want *metadata.Error", err, err)
	assert.Equal(t, metadata.KindMalformed, e.Kind, "kind of %v", err)
	assert.Equal(t, path, e.Path, "path of %v", err)
	assert.Equal(t, field, e.Field, "field of %v", err)
	assert.True(t, metadata.IsMalformed(err))
	assert.False(t, metadata.IsNotFound(err))
	assert.False(t, metadata.IsUnavailable(err))
}

var summaryCases = []struct {
	name      string
	in        string
	want      metadata.Summary
	wantField string // non-empty (or "-" for the whole document): malformed
}{
	{name: "reference example", in: refSummary, want: refSummaryValue()},
	{
		name: "real server keys kept in Extra",
		in:   realSummary,
		want: metadata.Summary{
			Hostname: "web-1", InstanceID: 12345678, PublicIPv4: netip.MustParseAddr("5.6.7.8"),
			AvailabilityZone: "fsn1-dc14", Region: "eu-central",
			Extra: map[string]any{
				"local-ipv4": "",
				"network-config": map[string]any{
					"config": []any{map[string]any{
						"mac_address": "96:00:01:02:03:04",
						"name":        "eth0",
						"subnets":     []any{map[string]any{"ipv4": true, "type": "dhcp"}},
						"type":        "physical",
					}},
					"version": 1,
				},
				"public-keys": []any{"ssh-ed25519 AAAA... user@host"},
			},
		},
	},
	{name: "surrounding whitespace", in: "\n\n  \n" + refSummary + "\n \t\n", want: refSummaryValue()},
	{name: "CRLF line ends", in: strings.ReplaceAll(refSummary, "\n", "\r\n"), want: refSummaryValue()},
	{name: "empty", in: "", want: metadata.Summary{}},
	{name: "whitespace only", in: " \n\t\n", want: metadata.Summary{}},
	{name: "null document", in: "null\n", want: metadata.Summary{}},
	{name: "comment only", in: "# nothing\n", want: metadata.Summary{}},
	{name: "empty mapping", in: "{}", want: metadata.Summary{}},
	{name: "missing keys stay zero", in: "hostname: a\n", want: metadata.Summary{Hostname: "a"}},
	{name: "null values stay zero", in: "hostname:\npublic-ipv4: ~\ninstance-id: null\n", want: metadata.Summary{}},
	{name: "empty public-ipv4", in: "public-ipv4: ''\n", want: metadata.Summary{}},
	{name: "numeric hostname is text", in: "hostname: 1234\n", want: metadata.Summary{Hostname: "1234"}},
	{name: "hex instance-id", in: "instance-id: 0x2a\n", want: metadata.Summary{InstanceID: 42}},
	{name: "unknown scalar and non-string key", in: "vendor_data: x\n7: seven\n", want: metadata.Summary{
		Extra: map[string]any{"vendor_data": "x", "7": "seven"},
	}},
	{name: "nested non-string keys normalized", in: "x: {1: a, true: b}\n", want: metadata.Summary{
		Extra: map[string]any{"x": map[string]any{"1": "a", "true": "b"}},
	}},
	{name: "anchors and aliases", in: "region: &r eu-central\nx: *r\n", want: metadata.Summary{
		Region: "eu-central", Extra: map[string]any{"x": "eu-central"},
	}},
	{name: "quoted instance-id", in: "instance-id: '42'\n", wantField: "instance-id"},
	{name: "zero instance-id", in: "instance-id: 0\n", wantField: "instance-id"},
	{name: "negative instance-id", in: "instance-id: -1\n", wantField: "instance-id"},
	{name: "float instance-id", in: "instance-id: 4.2\n", wantField: "instance-id"},
	{name: "huge instance-id", in: "instance-id: 99999999999999999999\n", wantField: "instance-id"},
	{name: "text instance-id", in: "instance-id: abc\n", wantField: "instance-id"},
	{name: "IPv6 public-ipv4", in: "public-ipv4: '2001:db8::1'\n", wantField: "public-ipv4"},
	{name: "4in6 public-ipv4", in: "public-ipv4: '::ffff:1.2.3.4'\n", wantField: "public-ipv4"},
	{name: "short public-ipv4", in: "public-ipv4: 1.2.3\n", wantField: "public-ipv4"},
	{name: "hostname is a mapping", in: "hostname: {a: b}\n", wantField: "hostname"},
	{name: "region is a list", in: "region: [a]\n", wantField: "region"},
	{name: "duplicate key", in: "hostname: a\nhostname: b\n", wantField: "hostname"},
	{name: "duplicate unknown key", in: "x: a\nx: b\n", wantField: "x"},
	{name: "document is a list", in: "- a\n", wantField: "-"},
	{name: "document is a scalar", in: "my-server\n", wantField: "-"},
	{name: "two documents", in: "hostname: a\n---\nhostname: b\n", wantField: "-"},
	{name: "invalid YAML", in: "hostname: [a\n", wantField: "-"},
	{name: "tab indentation", in: "a:\n\tb: c\n", wantField: "-"},
	{name: "mapping key", in: "? [a]\n: b\n", wantField: "-"},
}

func TestParseSummary(t *testing.T) {
	for _, tc := range summaryCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metadata.ParseSummary([]byte(tc.in))
			if tc.wantField != "" {
				field := tc.wantField
				if field == "-" {
					field = ""
				}
				wantMalformed(t, err, "", field)
				assert.Equal(t, metadata.Summary{}, got, "a malformed document yields no values")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseSummaryErrorMessage(t *testing.T) {
	_, err := metadata.ParseSummary([]byte("instance-id: abc\n"))
	assert.EqualError(t, err, `metadata summary: malformed: field instance-id: "abc" is not an integer`)
}

func TestMarshalSummary(t *testing.T) {
	tests := []struct {
		name    string
		in      metadata.Summary
		want    string
		wantErr string
	}{
		{name: "reference example", in: refSummaryValue(), want: refSummary},
		{name: "zero", in: metadata.Summary{}, want: "{}\n"},
		{
			name: "extra kept and sorted",
			in:   metadata.Summary{Hostname: "h", Extra: map[string]any{"zz": 1, "local-ipv4": "", "a": []any{"x"}}},
			want: "a:\n  - x\nhostname: h\nlocal-ipv4: \"\"\nzz: 1\n",
		},
		{name: "extra shadows hostname", in: metadata.Summary{Extra: map[string]any{"hostname": "x"}}, wantErr: "shadows"},
		{name: "negative id", in: metadata.Summary{InstanceID: -1}, wantErr: "negative"},
		{name: "IPv6 public", in: metadata.Summary{PublicIPv4: netip.MustParseAddr("::1")}, wantErr: "not IPv4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metadata.MarshalSummary(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			back, err := metadata.ParseSummary(got)
			require.NoError(t, err)
			assert.Equal(t, tc.in, back)
		})
	}
}

func TestSummaryMapJSON(t *testing.T) {
	s, err := metadata.ParseSummary([]byte(realSummary))
	require.NoError(t, err)
	b, err := json.Marshal(s.Map())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "web-1", got["hostname"])
	assert.Equal(t, float64(12345678), got["instance-id"])
	assert.Equal(t, "5.6.7.8", got["public-ipv4"])
	assert.Equal(t, "", got["local-ipv4"])
	assert.Contains(t, got, "network-config")
	assert.Len(t, got, 8)
}

// pn returns a valid entry modified by f.
func pn(f func(*metadata.PrivateNetwork)) metadata.PrivateNetwork {
	p := refNetworks()[0]
	if f != nil {
		f(&p)
	}
	return p
}

// entry is the first reference entry with lines replaced by key (a new
// line, possibly several, or "" to drop the line).
func entry(repl map[string]string) string {
	var out []string
	for _, l := range strings.Split(refPrivateNetworks, "\n")[:9] {
		body := strings.TrimPrefix(strings.TrimPrefix(l, "- "), "  ")
		key, _, _ := strings.Cut(body, ":")
		if r, ok := repl[key]; ok {
			if r == "" {
				continue
			}
			body = r
		}
		out = append(out, body)
	}
	return "- " + strings.Join(out, "\n  ") + "\n"
}

var privateNetworkCases = []struct {
	name      string
	in        string
	want      []metadata.PrivateNetwork
	wantField string // non-empty (or "-"): malformed
}{
	{name: "reference example", in: refPrivateNetworks},
	{name: "surrounding whitespace", in: "\n\n" + refPrivateNetworks + "\n\n  "},
	{name: "empty", in: "", want: []metadata.PrivateNetwork{}},
	{name: "whitespace", in: "  \n ", want: []metadata.PrivateNetwork{}},
	{name: "empty sequence", in: "[]\n", want: []metadata.PrivateNetwork{}},
	{name: "null", in: "~", want: []metadata.PrivateNetwork{}},
	{name: "block alias_ips", in: entry(map[string]string{"alias_ips": "alias_ips:\n  - 10.0.0.3\n  - 10.0.0.4"})},
	{name: "missing alias_ips", in: entry(map[string]string{"alias_ips": ""}), want: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = nil })}},
	{name: "null alias_ips", in: entry(map[string]string{"alias_ips": "alias_ips:"}), want: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = nil })}},
	{name: "missing subnet", in: entry(map[string]string{"subnet": ""}), want: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.Subnet = netip.Prefix{} })}},
	{name: "missing name and interface_num", in: entry(map[string]string{"network_name": "", "interface_num": ""}), want: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.NetworkName = ""; p.InterfaceNum = 0 })}},
	{name: "undocumented key ignored", in: entry(map[string]string{"network_name": "network_name: nw-test1\n  mtu: 1450"})},
	{name: "upper-case MAC", in: entry(map[string]string{"mac_address": "mac_address: 86:00:00:2A:7D:E0"})},
	{name: "gateway outside subnet", in: entry(map[string]string{"gateway": "gateway: 10.255.0.1"}), want: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.Gateway = netip.MustParseAddr("10.255.0.1") })}},
	{name: "missing ip", in: entry(map[string]string{"ip": ""}), wantField: "[0].ip"},
	{name: "null ip", in: entry(map[string]string{"ip": "ip: ~"}), wantField: "[0].ip"},
	{name: "IPv6 ip", in: entry(map[string]string{"ip": "ip: 'fd00::2'"}), wantField: "[0].ip"},
	{name: "ip with zone", in: entry(map[string]string{"ip": "ip: 10.0.0.2%eth1"}), wantField: "[0].ip"},
	{name: "ip outside network", in: entry(map[string]string{"ip": "ip: 11.0.0.2"}), wantField: "[0].ip"},
	{name: "ip is a list", in: entry(map[string]string{"ip": "ip: [10.0.0.2]"}), wantField: "[0].ip"},
	{name: "bad alias", in: entry(map[string]string{"alias_ips": "alias_ips: [10.0.0.3, 10.0.0.x]"}), wantField: "[0].alias_ips[1]"},
	{name: "null alias element", in: entry(map[string]string{"alias_ips": "alias_ips: [10.0.0.3, ~]"}), wantField: "[0].alias_ips[1]"},
	{name: "alias outside network", in: entry(map[string]string{"alias_ips": "alias_ips: [11.0.0.3]"}), wantField: "[0].alias_ips[0]"},
	{name: "alias_ips scalar", in: entry(map[string]string{"alias_ips": "alias_ips: 10.0.0.3"}), wantField: "[0].alias_ips"},
	{name: "missing gateway", in: entry(map[string]string{"gateway": ""}), wantField: "[0].gateway"},
	{name: "gateway outside network", in: entry(map[string]string{"gateway": "gateway: 11.0.0.1"}), wantField: "[0].gateway"},
	{name: "missing network", in: entry(map[string]string{"network": ""}), wantField: "[0].network"},
	{name: "network host bits", in: entry(map[string]string{"network": "network: 10.0.0.5/8"}), wantField: "[0].network"},
	{name: "IPv6 network", in: entry(map[string]string{"network": "network: 'fd00::/8'"}), wantField: "[0].network"},
	{name: "network without length", in: entry(map[string]string{"network": "network: 10.0.0.0"}), wantField: "[0].network"},
	{name: "subnet outside network", in: entry(map[string]string{"subnet": "subnet: 11.0.0.0/24"}), wantField: "[0].subnet"},
	{name: "subnet wider than network", in: entry(map[string]string{"network": "network: 10.0.0.0/16", "subnet": "subnet: 10.0.0.0/8"}), wantField: "[0].subnet"},
	{name: "missing mac", in: entry(map[string]string{"mac_address": ""}), wantField: "[0].mac_address"},
	{name: "bad mac", in: entry(map[string]string{"mac_address": "mac_address: 86:00:00:2a:7d"}), wantField: "[0].mac_address"},
	{name: "EUI-64 mac", in: entry(map[string]string{"mac_address": "mac_address: 86:00:00:2a:7d:e0:00:01"}), wantField: "[0].mac_address"},
	{name: "missing network_id", in: entry(map[string]string{"network_id": ""}), wantField: "[0].network_id"},
	{name: "zero network_id", in: entry(map[string]string{"network_id": "network_id: 0"}), wantField: "[0].network_id"},
	{name: "quoted network_id", in: entry(map[string]string{"network_id": "network_id: '1234'"}), wantField: "[0].network_id"},
	{name: "negative interface_num", in: entry(map[string]string{"interface_num": "interface_num: -1"}), wantField: "[0].interface_num"},
	{name: "text interface_num", in: entry(map[string]string{"interface_num": "interface_num: one"}), wantField: "[0].interface_num"},
	{name: "duplicate key", in: entry(map[string]string{"ip": "ip: 10.0.0.2\n  ip: 10.0.0.9"}), wantField: "[0].ip"},
	{name: "second entry bad", in: refPrivateNetworks + "- ip: 1\n", wantField: "[2].ip"},
	{name: "entry is a scalar", in: "- 10.0.0.2\n", wantField: "[0]"},
	{name: "entry is null", in: "-\n", wantField: "[0]"},
	{name: "document is a mapping", in: "ip: 10.0.0.2\n", wantField: "-"},
	{name: "garbage YAML", in: "- ip: [10.0.0.2\n", wantField: "-"},
	{name: "HTML error page", in: "<html><body>502 Bad Gateway</body></html>", wantField: "-"},
}

func TestParsePrivateNetworks(t *testing.T) {
	for _, tc := range privateNetworkCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metadata.ParsePrivateNetworks([]byte(tc.in))
			if tc.wantField != "" {
				field := tc.wantField
				if field == "-" {
					field = ""
				}
				wantMalformed(t, err, metadata.KeyPrivateNetworks, field)
				assert.Nil(t, got, "a malformed document yields no networks")
				return
			}
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = refNetworks()
				if !strings.Contains(tc.in, "192.168.0.2") {
					want = want[:1]
				}
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestParsePrivateNetworksErrorMessage(t *testing.T) {
	_, err := metadata.ParsePrivateNetworks([]byte(entry(map[string]string{"alias_ips": "alias_ips: [10.0.0.3, 10.0.0.x]"})))
	assert.EqualError(t, err, `metadata private-networks: malformed: field [0].alias_ips[1]: ParseAddr("10.0.0.x"): unexpected character (at "x")`)
}

func TestMarshalPrivateNetworks(t *testing.T) {
	tests := []struct {
		name    string
		in      []metadata.PrivateNetwork
		want    string
		wantErr string
	}{
		{name: "reference example", in: refNetworks(), want: refPrivateNetworks},
		{name: "empty", in: nil, want: "[]\n"},
		{name: "no subnet, nil aliases", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.Subnet = netip.Prefix{}; p.AliasIPs = nil })},
			want: "- ip: 10.0.0.2\n  alias_ips: []\n  interface_num: 1\n  mac_address: 86:00:00:2a:7d:e0\n  network_id: 1234\n  network_name: nw-test1\n  network: 10.0.0.0/8\n  gateway: 10.0.0.1\n"},
		{name: "numeric-looking name quoted", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.NetworkName = "123" })},
			want: strings.Replace(entry(nil), "nw-test1", `"123"`, 1)},
		{name: "zero ip", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.IP = netip.Addr{} })}, wantErr: "[0].ip"},
		{name: "alias outside", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = []netip.Addr{netip.MustParseAddr("1.1.1.1")} })}, wantErr: "[0].alias_ips[0]"},
		{name: "network host bits", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.Network = netip.MustParsePrefix("10.0.0.1/8") })}, wantErr: "[0].network"},
		{name: "short mac", in: []metadata.PrivateNetwork{pn(func(p *metadata.PrivateNetwork) { p.MACAddress = p.MACAddress[:4] })}, wantErr: "[0].mac_address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metadata.MarshalPrivateNetworks(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			back, err := metadata.ParsePrivateNetworks(got)
			require.NoError(t, err)
			want := tc.in
			if want == nil {
				want = []metadata.PrivateNetwork{}
			}
			assert.Equal(t, want, back)
		})
	}
}

func TestPrivateNetworksValueJSON(t *testing.T) {
	pns := refNetworks()
	pns[1].Subnet = netip.Prefix{}
	b, err := json.Marshal(metadata.PrivateNetworksValue(pns))
	require.NoError(t, err)
	assert.JSONEq(t, `[
	  {"ip":"10.0.0.2","alias_ips":["10.0.0.3","10.0.0.4"],"interface_num":1,"mac_address":"86:00:00:2a:7d:e0",
	   "network_id":1234,"network_name":"nw-test1","network":"10.0.0.0/8","subnet":"10.0.0.0/24","gateway":"10.0.0.1"},
	  {"ip":"192.168.0.2","alias_ips":[],"interface_num":2,"mac_address":"86:00:00:2a:7d:e1",
	   "network_id":4321,"network_name":"nw-test2","network":"192.168.0.0/16","gateway":"192.168.0.1"}
	]`, string(b))
	assert.Equal(t, []map[string]any{}, metadata.PrivateNetworksValue(nil))
}

func TestParseInstanceID(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "42", want: 42},
		{in: " 42\n", want: 42},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "4 2", wantErr: true},
		{in: "0x2a", wantErr: true},
		{in: "9223372036854775808", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := metadata.ParseInstanceID([]byte(tc.in))
			if tc.wantErr {
				wantMalformed(t, err, metadata.KeyInstanceID, "")
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParsePublicIPv4(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Addr
		wantErr bool
	}{
		{in: "1.2.3.4", want: netip.MustParseAddr("1.2.3.4")},
		{in: "\t1.2.3.4 \n", want: netip.MustParseAddr("1.2.3.4")},
		{in: ""},
		{in: " \n"},
		{in: "2001:db8::1", wantErr: true},
		{in: "1.2.3.4/32", wantErr: true},
		{in: "01.2.3.4", wantErr: true},
		{in: "localhost", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := metadata.ParsePublicIPv4([]byte(tc.in))
			if tc.wantErr {
				wantMalformed(t, err, metadata.KeyPublicIPv4, "")
				assert.False(t, got.IsValid())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestErrorKinds(t *testing.T) {
	base := &metadata.Error{Path: "hostname", Kind: metadata.KindNotFound, Status: 404}
	wrapped := errors.Join(errors.New("other"), base)
	assert.True(t, metadata.IsNotFound(wrapped))
	assert.False(t, metadata.IsUnavailable(wrapped))
	assert.False(t, metadata.IsNotFound(errors.New("plain")))
	assert.EqualError(t, base, "metadata hostname: not found: status 404")
	u := &metadata.Error{Kind: metadata.KindUnavailable, Status: 503, Attempts: 5}
	assert.EqualError(t, u, "metadata summary: unavailable: status 503 after 5 attempts")
}
