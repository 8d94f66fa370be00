package keepalived

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigRender(t *testing.T) {
	base := Config{
		RouterID:     "srv-1",
		Interface:    "enp7s0",
		SrcIP:        netip.MustParseAddr("10.0.0.2"),
		Peers:        []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")},
		VIP:          netip.MustParsePrefix("203.0.113.10/32"),
		VIPDevice:    "eth0",
		NotifyMaster: "/etc/keepalived/notify.sh",
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		want    string
		wantErr bool
	}{
		{name: "guide defaults", mod: func(*Config) {}, want: `global_defs {
  router_id srv-1
  script_user root
  enable_script_security
  max_auto_priority -1
}

vrrp_instance hc {
  state BACKUP
  interface enp7s0
  virtual_router_id 51
  priority 100
  advert_int 1
  nopreempt
  unicast_src_ip 10.0.0.2
  unicast_peer {
    10.0.0.3
    10.0.0.4
  }
  virtual_ipaddress {
    203.0.113.10/32 dev eth0
  }
  notify_master "/etc/keepalived/notify.sh master"
}
`},
		{name: "tuned", mod: func(c *Config) {
			c.RouterID, c.Instance, c.VirtualRouterID, c.Priority = "", "VI_1", 7, 150
			c.AdvertInt, c.Preempt, c.NotifyMaster = 250*time.Millisecond, true, ""
			c.Peers = c.Peers[:1]
		}, want: `global_defs {
  script_user root
  enable_script_security
  max_auto_priority -1
}

vrrp_instance VI_1 {
  state BACKUP
  interface enp7s0
  virtual_router_id 7
  priority 150
  advert_int 0.25
  unicast_src_ip 10.0.0.2
  unicast_peer {
    10.0.0.3
  }
  virtual_ipaddress {
    203.0.113.10/32 dev eth0
  }
}
`},
		{name: "no peers", mod: func(c *Config) { c.Peers = nil }, wantErr: true},
		{name: "no interface", mod: func(c *Config) { c.Interface = "" }, wantErr: true},
		{name: "no vip", mod: func(c *Config) { c.VIP = netip.Prefix{} }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Peers = append([]netip.Addr(nil), base.Peers...)
			tt.mod(&c)
			got, err := c.Render()
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

var logLines = []struct {
	line string
	want Transition
	ok   bool
}{
	{line: "Sat Nov 28 04:15:52 2026: (hc) Entering MASTER STATE", want: Transition{"hc", "MASTER"}, ok: true},
	{line: "Sat Nov 28 04:15:52 2026: (VI_1) Entering BACKUP STATE (init)", want: Transition{"VI_1", "BACKUP"}, ok: true},
	{line: "(x) Entering FAULT STATE", want: Transition{"x", "FAULT"}, ok: true},
	{line: "Sat Nov 28 04:15:52 2026: (hc) received lower priority advert", ok: false},
	{line: "Sat Nov 28 04:15:52 2026: Starting VRRP child process, pid=15309", ok: false},
	{line: "() Entering MASTER STATE", ok: false},
	{line: "(hc) Entering  STATE", ok: false},
	{line: "Entering MASTER STATE", ok: false},
	{line: "", ok: false},
}

func TestParseLogLine(t *testing.T) {
	for _, tt := range logLines {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := ParseLogLine(tt.line)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseLogLine checks that parsing never panics and that a parsed
// transition prints to a line that parses to the same transition.
func FuzzParseLogLine(f *testing.F) {
	for _, tt := range logLines {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, ok := ParseLogLine(line)
		if !ok {
			return
		}
		again, ok := ParseLogLine(got.String())
		if !ok || again != got {
			t.Fatalf("ParseLogLine(%q) = %+v, reparse of %q = %+v, %v", line, got, got.String(), again, ok)
		}
	})
}
