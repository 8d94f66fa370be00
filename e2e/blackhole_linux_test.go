package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetadataBlackholeAtBoot: the private DHCP server's 169.254.169.254/32
// route via the private gateway is in place before hc-agent starts, as on a
// normal boot (issue 13). Without the pin the agent reports it at once
// although metadata cannot be read, and the failed read names the route;
// with pin_metadata_route the agent pins it before its first read and
// becomes ready.
func TestMetadataBlackholeAtBoot(t *testing.T) {
	for _, tc := range []struct {
		name string
		pin  bool
	}{{"reported without the pin", false}, {"pinned and ready", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, spec{servers: []string{"alpha"}, configurePrivate: true})
			s := w.c.Server("alpha")
			_, nets := s.Metadata()
			require.Len(t, nets, 1)
			l := w.privateLink(t, "alpha", nets[0].MACAddress.String())
			require.NotNil(t, l)
			out, err := s.Exec(w.ctx, "ip", "route", "replace", "169.254.169.254/32", "via", nets[0].Gateway.String(), "dev", l.Attrs().Name, "proto", "dhcp")
			require.NoError(t, err, out)

			dir := filepath.Join(w.dir, "alpha")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			cfg := w.config("alpha", dir) + "private_networks:\n  pin_metadata_route: " + map[bool]string{false: "false", true: "true"}[tc.pin] + "\n"
			// One short attempt per read, so that the failure (and its
			// message) comes quickly.
			cfg = strings.Replace(cfg, "metadata:\n", "metadata:\n  attempts: 1\n  timeout: 500ms\n", 1)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600))

			start := time.Now()
			p := w.startAgent("alpha")
			if !tc.pin {
				took := waitFor(t, 10*time.Second, 10*time.Millisecond, "black hole in the metrics", func() bool {
					body, err := s.Get(w.ctx, "http://127.0.0.1:9183/metrics")
					return err == nil && strings.Contains(body, "\nhcagent_metadata_blackholed 1\n")
				})
				t.Logf("black hole reported %v after start", took.Round(time.Millisecond))
				want := "a route sends 169.254.169.254 via " + nets[0].Gateway.String() + " dev " + l.Attrs().Name + " (proto dhcp); set private_networks.pin_metadata_route: true"
				waitFor(t, 10*time.Second, 10*time.Millisecond, "the failed read names the route", func() bool {
					return strings.Contains(p.Output(), want)
				})
				return
			}
			took := waitFor(t, 10*time.Second, 10*time.Millisecond, "agent ready", func() bool {
				body, err := s.Get(w.ctx, "http://127.0.0.1:9183/status")
				var st struct {
					Ready bool `json:"ready"`
				}
				return err == nil && json.Unmarshal([]byte(body), &st) == nil && st.Ready
			})
			t.Logf("ready %v after start (%v in all)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			body, err := s.Get(w.ctx, "http://169.254.169.254/hetzner/v1/metadata/instance-id")
			require.NoError(t, err, "metadata reachable through the pin")
			require.NotEmpty(t, strings.TrimSpace(body))

			// A clean stop is quiet (issue 15 item 7): no warning about the
			// netlink subscriptions whose sockets the stop closes, and no
			// NIC that was there all along "appeared".
			ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
			defer cancel()
			w.stopped["alpha"] = true
			require.NoError(t, p.Stop(ctx, syscall.SIGTERM))
			assert.NotContains(t, p.Output(), "subscription error")
			assert.NotContains(t, p.Output(), "private nic appeared")
		})
	}
}
