package reload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/config"
)

func group(name string, mod ...func(*config.Group)) config.Group {
	g := config.DefaultGroup()
	g.Name = name
	g.FloatingIPs = []string{name + "-ip"}
	g.Peers = []string{"10.0.0.2", "10.0.0.3"}
	g.KeyFile = "/etc/hc-agent/" + name + ".key"
	for _, m := range mod {
		m(&g)
	}
	return g
}

func cfg(groups ...config.Group) config.Config {
	c := config.Default()
	c.Groups = groups
	return c
}

// summary is a plan in short: "name:action[changed...]".
func summary(p Plan) []string {
	var out []string
	for _, g := range p.Groups {
		s := g.Name + ":" + g.Action.String()
		if len(g.Changed) > 0 {
			s += "["
			for i, k := range g.Changed {
				if i > 0 {
					s += ","
				}
				s += k
			}
			s += "]"
		}
		out = append(out, s)
	}
	return out
}

func TestCompute(t *testing.T) {
	keys := KeyFiles{"web": []byte("k1\n"), "db": []byte("k2\n")}
	tests := []struct {
		name      string
		old, new  config.Config
		oldKeys   KeyFiles
		newKeys   KeyFiles
		want      []string
		wantPN    bool
		wantLevel bool
		wantLater []string
		changed   bool
	}{
		{name: "nothing changed", old: cfg(group("web")), new: cfg(group("web")), oldKeys: keys, newKeys: keys, want: []string{"web:keep"}},
		{name: "group added", old: cfg(group("web")), new: cfg(group("web"), group("db")), oldKeys: keys, newKeys: keys,
			want: []string{"web:keep", "db:start"}, changed: true},
		{name: "group removed", old: cfg(group("web"), group("db")), new: cfg(group("db")), oldKeys: keys, newKeys: keys,
			want: []string{"db:keep", "web:stop"}, changed: true},
		{name: "priority and preemption in place", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.Priority = 150; g.Preempt = true; g.PreemptDelay = time.Second })),
			oldKeys: keys, newKeys: keys, want: []string{"web:update[priority,preempt,preempt_delay]"}, changed: true},
		{name: "peers in place", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.Peers = []string{"10.0.0.2"} })),
			oldKeys: keys, newKeys: keys, want: []string{"web:update[peers]"}, changed: true},
		{name: "a new health check in place", old: cfg(group("web")),
			new: cfg(group("web", func(g *config.Group) {
				g.Health.Type, g.Health.Target = config.HealthTCP, "127.0.0.1:80"
			})),
			oldKeys: keys, newKeys: keys, want: []string{"web:update[health]"}, changed: true},
		{name: "a new peer selector restarts the group", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.PeerSelector = "role=web" })),
			oldKeys: keys, newKeys: keys, want: []string{"web:restart[peer_selector]"}, changed: true},
		{name: "rotated key file content", old: cfg(group("web")), new: cfg(group("web")),
			oldKeys: keys, newKeys: KeyFiles{"web": []byte("k1\nk9\n"), "db": keys["db"]},
			want: []string{"web:update[key_file content]"}, changed: true},
		{name: "floating ips change restarts the group", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.FloatingIPs = append(g.FloatingIPs, "web-v6") })),
			oldKeys: keys, newKeys: keys, want: []string{"web:restart[floating_ips]"}, changed: true},
		{name: "port and priority restart", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.Port = 7947; g.Priority = 1 })),
			oldKeys: keys, newKeys: keys, want: []string{"web:restart[priority,port]"}, changed: true},
		{name: "encryption turned off restarts", old: cfg(group("web")),
			new:     cfg(group("web", func(g *config.Group) { g.KeyFile = ""; g.Insecure = true })),
			oldKeys: keys, newKeys: KeyFiles{}, want: []string{"web:restart[key_file,insecure]"}, changed: true},
		{name: "private networks reconcile at once", old: cfg(),
			new: func() config.Config { c := cfg(); c.PrivateNetworks.MTU = 1400; return c }(), wantPN: true, changed: true},
		{name: "log level in place, format at restart", old: cfg(),
			new:       func() config.Config { c := cfg(); c.Log.Level, c.Log.Format = "debug", "json"; return c }(),
			wantLevel: true, wantLater: []string{"log.format"}, changed: true},
		{name: "token and listener", old: cfg(),
			new: func() config.Config {
				c := cfg()
				c.API.Token = "new-token"
				c.Metrics.Listen = "10.0.0.1:9183"
				return c
			}(),
			wantLater: []string{"api.token", "metrics"}, changed: true},
		{name: "floating ip host settings at restart", old: cfg(),
			new:       func() config.Config { c := cfg(); c.FloatingIPs.LabelSelector = "role=web"; return c }(),
			wantLater: []string{"floating_ips"}, changed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(tt.old, tt.new, tt.oldKeys, tt.newKeys)
			assert.Equal(t, tt.want, summary(p))
			assert.Equal(t, tt.wantPN, p.PrivateNetworks, "private networks")
			assert.Equal(t, tt.wantLevel, p.LogLevel, "log level")
			assert.Equal(t, tt.wantLater, p.AtRestart)
			assert.Equal(t, tt.changed, p.Changed())
		})
	}
}

func TestComputeKeepsGroupValues(t *testing.T) {
	old := cfg(group("web"))
	new := cfg(group("web", func(g *config.Group) { g.Priority = 7 }))
	p := Compute(old, new, nil, nil)
	assert.Equal(t, 100, p.Groups[0].Old.Priority)
	assert.Equal(t, 7, p.Groups[0].New.Priority)
}
