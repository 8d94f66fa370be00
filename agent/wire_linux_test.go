package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/internal/nstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
	"github.com/hc-agent/hc-agent/metrics"
)

var linkSeq atomic.Int32

// TestRunInNetns runs the real agent (metadata client, netconf over netlink)
// against the fake metadata service, with netlink acting in a namespace the
// test created. The state dir holds an ownership record claiming 10.0.0.99
// on the private NIC: when it was written by this server, the agent removes
// that address (it owns it and metadata no longer lists it); when it comes
// from the server the image was made on, it is discarded and the address,
// which hc-agent never added here, stays.
func TestRunInNetns(t *testing.T) {
	const mac = "86:00:00:aa:bb:01"
	for _, tc := range []struct {
		name          string
		stateInstance int64
		wantStray     bool
	}{
		{name: "state from this server is used", stateInstance: 4711, wantStray: false},
		{name: "state from the image's build server is discarded", stateInstance: 1, wantStray: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, peer := nstestNS(t), nstestNS(t)
			h, err := netlink.NewHandleAt(server)
			require.NoError(t, err)
			t.Cleanup(h.Close)
			ph, err := netlink.NewHandleAt(peer)
			require.NoError(t, err)
			t.Cleanup(ph.Close)

			seq := linkSeq.Add(1)
			name := fmt.Sprintf("hca%d-%d", os.Getpid()%100000, seq)
			peerName := fmt.Sprintf("hcb%d-%d", os.Getpid()%100000, seq)
			hw, _ := net.ParseMAC(mac)
			require.NoError(t, h.LinkAdd(&netlink.Veth{
				LinkAttrs:     netlink.LinkAttrs{Name: name, HardwareAddr: hw, MTU: 1500},
				PeerName:      peerName,
				PeerNamespace: netlink.NsFd(int(peer)),
			}))
			pl, err := ph.LinkByName(peerName)
			require.NoError(t, err)
			require.NoError(t, ph.LinkSetUp(pl))
			link, err := h.LinkByName(name)
			require.NoError(t, err)
			stray, _ := netlink.ParseAddr("10.0.0.99/32")
			require.NoError(t, h.AddrAdd(link, stray))

			md := metadatatest.New(t)
			md.SetSummary(metadata.Summary{InstanceID: 4711, Hostname: "web-1"})
			md.SetPrivateNetworks([]metadata.PrivateNetwork{{
				IP:          netip.MustParseAddr("10.0.0.2"),
				MACAddress:  hw,
				NetworkID:   1,
				NetworkName: "net",
				Network:     netip.MustParsePrefix("10.0.0.0/16"),
				Subnet:      netip.MustParsePrefix("10.0.0.0/24"),
				Gateway:     netip.MustParseAddr("10.0.0.1"),
			}})

			stateDir := t.TempDir()
			require.NoError(t, SaveState(stateDir, State{InstanceID: tc.stateInstance}))
			writeFile(t, filepath.Join(stateDir, OwnedFile),
				`{"version": 1, "addresses": [{"mac": "`+mac+`", "prefix": "10.0.0.99/32"}]}`)

			cfg := config.Default()
			cfg.StateDir = stateDir
			cfg.Metadata.Endpoint = md.URL()
			cfg.Metrics.Listen = "127.0.0.1:0"
			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			deps, closeDeps, err := Wire(cfg, log, metrics.BuildInfo{Version: "test"}, System{Netns: &server})
			require.NoError(t, err)
			t.Cleanup(closeDeps)
			ready := make(chan struct{})
			deps.Notify = func(s string) error {
				if s == "READY=1" {
					close(ready)
				}
				return nil
			}
			deps.Watchdog = func() (time.Duration, error) { return 0, nil }
			a, err := New(cfg, deps)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("agent stopped before READY: %v", err)
			}
			addrs, err := h.AddrList(link, netlink.FAMILY_V4)
			require.NoError(t, err)
			var got []string
			for _, a := range addrs {
				got = append(got, a.IPNet.String())
			}
			assert.Contains(t, got, "10.0.0.2/32")
			if tc.wantStray {
				assert.Contains(t, got, "10.0.0.99/32")
			} else {
				assert.NotContains(t, got, "10.0.0.99/32")
			}
			st := a.Status()
			assert.Equal(t, int64(4711), st.InstanceID)
			assert.Empty(t, st.Components[ComponentNetconf].Error)
			cancel()
			require.NoError(t, <-done)
		})
	}
}

// TestRunDaemonStopsWithoutMetadata: RunDaemon applies nothing and returns
// cleanly when it is stopped before the metadata service answered (here a
// closed loopback port).
func TestRunDaemonStopsWithoutMetadata(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.Metadata.Endpoint = "http://" + addr + "/hetzner/v1/metadata"
	cfg.Metadata.Attempts = 1
	cfg.Metrics.Listen = config.MetricsOff
	t.Setenv("NOTIFY_SOCKET", "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, RunDaemon(ctx, cfg, slog.New(slog.DiscardHandler), metrics.BuildInfo{}, System{}))
	ents, err := StateEntries(cfg.StateDir)
	require.NoError(t, err)
	assert.Empty(t, ents, "state written without metadata")
}

// nstestNS is a fresh network namespace for the test (see nstest.New).
func nstestNS(t *testing.T) netns.NsHandle {
	ns, _ := nstest.New(t)
	return ns
}
