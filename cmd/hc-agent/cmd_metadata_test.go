package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// fakeMetadata starts the fake metadata service on loopback with the
// reference's example server.
func fakeMetadata(t *testing.T) *metadatatest.Server {
	t.Helper()
	srv := metadatatest.New(t)
	srv.SetSummary(metadata.Summary{
		Hostname: "my-server", InstanceID: 42, PublicIPv4: netip.MustParseAddr("1.2.3.4"),
		AvailabilityZone: "hel1-dc2", Region: "eu-central",
		Extra: map[string]any{"public-keys": []any{"ssh-ed25519 AAAA k1"}, "local-ipv4": "10.0.0.2"},
	})
	srv.SetPrivateNetworks([]metadata.PrivateNetwork{{
		IP:           netip.MustParseAddr("10.0.0.2"),
		AliasIPs:     []netip.Addr{netip.MustParseAddr("10.0.0.3")},
		InterfaceNum: 1,
		MACAddress:   net.HardwareAddr{0x86, 0, 0, 0x2a, 0x7d, 0xe0},
		NetworkID:    1234,
		NetworkName:  "nw-test1",
		Network:      netip.MustParsePrefix("10.0.0.0/8"),
		Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
		Gateway:      netip.MustParseAddr("10.0.0.1"),
	}})
	return srv
}

var wantPrivateNetworks = []any{map[string]any{
	"ip": "10.0.0.2", "alias_ips": []any{"10.0.0.3"}, "interface_num": 1, "mac_address": "86:00:00:2a:7d:e0",
	"network_id": 1234, "network_name": "nw-test1", "network": "10.0.0.0/8", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1",
}}

func TestMetadata(t *testing.T) {
	srv := fakeMetadata(t)
	// Generous timeouts: a loaded test machine must not turn into a failure.
	noConfig := writeFile(t, "config.yaml", "metadata:\n  timeout: 30s\n", 0o644)
	viaConfig := writeFile(t, "config.yaml", "metadata:\n  endpoint: "+srv.URL()+"\n  attempts: 1\n  timeout: 30s\n", 0o644)

	summaryWant := map[string]any{
		"hostname": "my-server", "instance-id": 42, "public-ipv4": "1.2.3.4",
		"availability-zone": "hel1-dc2", "region": "eu-central",
		"public-keys": []any{"ssh-ed25519 AAAA k1"}, "local-ipv4": "10.0.0.2",
		"private-networks": wantPrivateNetworks,
	}
	tests := []struct {
		name    string
		config  string
		args    []string
		json    bool
		want    any    // decoded output, compared after decoding
		wantRaw string // exact output, when set
	}{
		{name: "summary as yaml", args: []string{"--endpoint", srv.URL()}, want: summaryWant},
		{name: "summary as json", args: []string{"--json", "--endpoint", srv.URL()}, json: true, want: summaryWant},
		{name: "endpoint from the config", config: viaConfig, want: summaryWant},
		{name: "hostname", args: []string{"--endpoint", srv.URL(), "hostname"}, wantRaw: "my-server\n"},
		{name: "instance-id", args: []string{"--endpoint", srv.URL(), "instance-id"}, wantRaw: "42\n"},
		{name: "instance-id as json", args: []string{"--endpoint", srv.URL(), "--json", "instance-id"}, wantRaw: "42\n"},
		{name: "public-ipv4", args: []string{"--endpoint", srv.URL(), "public-ipv4"}, wantRaw: "1.2.3.4\n"},
		{name: "region as json", args: []string{"--endpoint", srv.URL(), "--json", "region"}, wantRaw: "\"eu-central\"\n"},
		{name: "private-networks", args: []string{"--endpoint", srv.URL(), "private-networks"}, want: wantPrivateNetworks},
		{name: "private-networks as json", args: []string{"--json", "--endpoint", srv.URL(), "private-networks"}, json: true, want: wantPrivateNetworks},
		{name: "flags after the key", args: []string{"hostname", "--endpoint", srv.URL(), "--json"}, wantRaw: "\"my-server\"\n"},
		{name: "extra key of the summary", args: []string{"--endpoint", srv.URL(), "public-keys"}, want: []any{"ssh-ed25519 AAAA k1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.config
			if cfg == "" {
				cfg = noConfig
			}
			r := runCLI(t, nil, append([]string{"metadata", "--config", cfg}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Empty(t, r.stderr)
			if tc.wantRaw != "" {
				assert.Equal(t, tc.wantRaw, r.stdout)
				return
			}
			var got any
			if tc.json {
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
				want, err := json.Marshal(tc.want)
				require.NoError(t, err)
				var wantDecoded any
				require.NoError(t, json.Unmarshal(want, &wantDecoded))
				assert.Equal(t, wantDecoded, got)
				return
			}
			require.NoError(t, yaml.Unmarshal([]byte(r.stdout), &got), r.stdout)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMetadataNoPrivateNetworks(t *testing.T) {
	srv := metadatatest.New(t)
	srv.SetSummary(metadata.Summary{Hostname: "solo", InstanceID: 7, Region: "eu-central"})
	cfg := writeFile(t, "config.yaml", "metadata:\n  timeout: 30s\n", 0o644)
	r := runCLI(t, nil, "metadata", "--config", cfg, "--endpoint", srv.URL(), "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{"hostname":"solo","instance-id":7,"region":"eu-central","private-networks":[]}`, r.stdout)
}

func TestMetadataErrors(t *testing.T) {
	srv := fakeMetadata(t)
	cfg := writeFile(t, "config.yaml", "metadata:\n  timeout: 30s\n", 0o644)

	// A loopback port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + metadatatest.BasePath
	require.NoError(t, ln.Close())

	broken := metadatatest.New(t)
	broken.SetStatus("", http.StatusInternalServerError, -1)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "unreachable", args: []string{"--endpoint", closed, "--attempts", "1"},
			want: []string{"hc-agent: metadata summary: unavailable", "connection refused"}},
		{name: "unreachable key", args: []string{"--endpoint", closed, "--attempts", "1", "hostname"},
			want: []string{"hc-agent: metadata hostname: unavailable"}},
		{name: "server errors after the retry budget", args: []string{"--endpoint", broken.URL(), "--attempts", "2"},
			want: []string{"hc-agent: metadata summary: unavailable: status 500 after 2 attempts"}},
		{name: "key not in the summary", args: []string{"--endpoint", srv.URL(), "nope"},
			want: []string{`hc-agent: metadata key "nope": not in the summary (keys: hostname, instance-id,`, "local-ipv4, public-keys)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"metadata", "--config", cfg}, tc.args...)...)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
	assert.Len(t, broken.Requests(), 2, "the retry budget was used")
}

func TestMetadataBadConfig(t *testing.T) {
	cfg := writeFile(t, "config.yaml", "metadata:\n  endpont: x\n", 0o644)
	r := runCLI(t, nil, "metadata", "--config", cfg, "--endpoint", "http://127.0.0.1:1/x")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "line 2: metadata.endpont: unknown key")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
}
