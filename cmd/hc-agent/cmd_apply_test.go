package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// The apply tests only use --dry-run or fail before touching netlink: a
// real apply would act on this machine's network. netconf's own tests cover
// applying inside network namespaces.
func TestApply(t *testing.T) {
	srv := metadatatest.New(t)
	// A MAC no NIC of this machine has: the plan is empty.
	srv.SetPrivateNetworks([]metadata.PrivateNetwork{{
		IP:           netip.MustParseAddr("10.0.0.2"),
		InterfaceNum: 1,
		MACAddress:   net.HardwareAddr{0x86, 0, 0, 0xfe, 0xed, 0x01},
		NetworkID:    1234,
		NetworkName:  "nw-test1",
		Network:      netip.MustParsePrefix("10.0.0.0/8"),
		Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
		Gateway:      netip.MustParseAddr("10.0.0.1"),
	}})
	stateDir := t.TempDir()
	cfg := writeFile(t, "config.yaml", "state_dir: "+stateDir+"\nmetadata:\n  endpoint: "+srv.URL()+"\n  attempts: 1\n", 0o644)
	down := metadatatest.New(t)
	down.SetStatus(metadata.KeyPrivateNetworks, 500, -1)
	cfgDown := writeFile(t, "config.yaml", "state_dir: "+stateDir+"\nmetadata:\n  endpoint: "+down.URL()+"\n  attempts: 1\n", 0o644)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "dry run", args: []string{"apply", "--config", cfg, "--dry-run"}, wantStdout: "nothing to change\n"},
		{name: "metadata down", args: []string{"apply", "--config", cfgDown, "--dry-run"}, wantCode: 1, wantStderr: "read private networks from metadata"},
		{name: "argument", args: []string{"apply", "--config", cfg, "now"}, wantCode: 2, wantStderr: "takes no arguments"},
		{name: "help", args: []string{"apply", "--help"}, wantStdout: "Usage: hc-agent apply [--dry-run]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			assert.Equal(t, tt.wantCode, r.code, "stderr: %s", r.stderr)
			if tt.name == "help" {
				assert.True(t, strings.HasPrefix(r.stdout, tt.wantStdout), r.stdout)
			} else {
				assert.Equal(t, tt.wantStdout, r.stdout)
			}
			assert.Contains(t, r.stderr, tt.wantStderr)
		})
	}
}
