package simcloud

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
)

func TestMetadataHandler(t *testing.T) {
	view := metadataView{
		Summary: metadata.Summary{
			Hostname: "alpha", InstanceID: 42, PublicIPv4: netip.MustParseAddr("203.0.113.11"),
			AvailabilityZone: "fsn1-dc14", Region: "eu-central",
		},
		PrivateNetworks: []metadata.PrivateNetwork{{
			IP:           netip.MustParseAddr("10.0.0.2"),
			AliasIPs:     []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")},
			InterfaceNum: 1,
			MACAddress:   net.HardwareAddr{0x86, 0, 0, 0x2a, 0x7d, 0xe0},
			NetworkID:    1234,
			NetworkName:  "nw-test1",
			Network:      netip.MustParsePrefix("10.0.0.0/8"),
			Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
			Gateway:      netip.MustParseAddr("10.0.0.1"),
		}},
	}
	h := metadataHandler{lookup: func(a netip.Addr) (metadataView, bool) {
		return view, a == netip.MustParseAddr("203.0.113.11")
	}}
	tests := []struct {
		name, remote, path string
		method             string
		wantCode           int
		wantBody           string
	}{
		{"summary", "203.0.113.11:4000", "/hetzner/v1/metadata", "GET", 200, ""},
		{"hostname", "203.0.113.11:4000", "/hetzner/v1/metadata/hostname", "GET", 200, "alpha"},
		{"instance-id", "203.0.113.11:4000", "/hetzner/v1/metadata/instance-id", "GET", 200, "42"},
		{"public-ipv4", "203.0.113.11:4000", "/hetzner/v1/metadata/public-ipv4", "GET", 200, "203.0.113.11"},
		{"az", "203.0.113.11:4000", "/hetzner/v1/metadata/availability-zone", "GET", 200, "fsn1-dc14"},
		{"region", "203.0.113.11:4000", "/hetzner/v1/metadata/region", "GET", 200, "eu-central"},
		{"private-networks", "203.0.113.11:4000", "/hetzner/v1/metadata/private-networks", "GET", 200, ""},
		{"unknown caller", "203.0.113.99:4000", "/hetzner/v1/metadata", "GET", 404, ""},
		{"unknown key", "203.0.113.11:4000", "/hetzner/v1/metadata/nope", "GET", 404, ""},
		{"other path", "203.0.113.11:4000", "/latest/meta-data", "GET", 404, ""},
		{"post", "203.0.113.11:4000", "/hetzner/v1/metadata", "POST", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.RemoteAddr = tt.remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.wantCode, w.Code)
			if tt.wantCode != http.StatusOK {
				return
			}
			switch tt.name {
			case "summary":
				// The agent's parser reads back exactly what was served.
				got, err := metadata.ParseSummary(w.Body.Bytes())
				require.NoError(t, err)
				assert.Equal(t, view.Summary, got)
			case "private-networks":
				got, err := metadata.ParsePrivateNetworks(w.Body.Bytes())
				require.NoError(t, err)
				assert.Equal(t, view.PrivateNetworks, got)
				assert.Contains(t, w.Body.String(), "alias_ips: [10.0.0.3, 10.0.0.4]")
			default:
				assert.Equal(t, tt.wantBody, w.Body.String())
			}
		})
	}
	t.Run("no private networks", func(t *testing.T) {
		b, err := renderPrivateNetworks(nil)
		require.NoError(t, err)
		got, err := metadata.ParsePrivateNetworks(b)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}
