package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
)

// fakeTarget records the calls a reload makes, in order, and fails those
// that start with a prefix of failing.
type fakeTarget struct {
	calls   []string
	failing map[string]error // call prefix -> error
}

func (f *fakeTarget) do(call string) error {
	f.calls = append(f.calls, call)
	for prefix, err := range f.failing {
		if strings.HasPrefix(call, prefix) {
			return err
		}
	}
	return nil
}

func (f *fakeTarget) StartGroup(_ context.Context, g config.Group, keys [][]byte) error {
	return f.do(fmt.Sprintf("start %s prio=%d keys=%d", g.Name, g.Priority, len(keys)))
}

func (f *fakeTarget) StopGroup(_ context.Context, name string) error {
	return f.do("stop " + name)
}

func (f *fakeTarget) UpdateGroup(_ context.Context, gp GroupPlan, keys [][]byte) error {
	return f.do(fmt.Sprintf("update %s %s keys=%d", gp.Name, strings.Join(gp.Changed, ","), len(keys)))
}

func (f *fakeTarget) ReconcilePrivateNetworks(_ context.Context, pn config.PrivateNetworks) error {
	return f.do(fmt.Sprintf("private-networks mtu=%d", pn.MTU))
}

func (f *fakeTarget) SetLogLevel(level string) error { return f.do("log-level " + level) }

func loaded(groups ...config.Group) Loaded {
	l := Loaded{Config: cfg(groups...), Keys: map[string][][]byte{}}
	for _, g := range groups {
		if g.KeyFile != "" {
			l.Keys[g.Name] = [][]byte{[]byte("key-" + g.Name)}
		}
	}
	return l
}

func TestReload(t *testing.T) {
	rotated := loaded(group("web"), group("db"))
	rotated.Keys["web"] = [][]byte{[]byte("new"), []byte("key-web")}
	tests := []struct {
		name       string
		next       Loaded
		loadErr    error
		failing    map[string]error
		wantCalls  []string
		wantErr    string
		wantNotify []string
		wantGroups []string // running config's groups after the reload
	}{
		{
			name: "nothing changed", next: loaded(group("web"), group("db")),
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: nothing changed"},
			wantGroups: []string{"web", "db"},
		},
		{
			name:    "invalid config is refused and changes nothing",
			loadErr: &config.Error{Err: errors.New("config /etc/hc-agent/config.yaml: 1 problem")},
			wantErr: "new configuration refused, the running one stays: config /etc/hc-agent/config.yaml: 1 problem",
			wantNotify: []string{"RELOADING=1",
				"READY=1\nSTATUS=reload refused: config /etc/hc-agent/config.yaml: 1 problem"},
			wantGroups: []string{"web", "db"},
		},
		{
			name: "removed group stops before a new one starts; changed in place",
			next: loaded(group("web", func(g *config.Group) { g.Priority = 150 }), group("cache")),
			wantCalls: []string{
				"stop db",
				"update web priority keys=1",
				"start cache prio=100 keys=1",
			},
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: 1 group(s) started, 1 group(s) stopped, 1 group(s) updated"},
			wantGroups: []string{"web", "cache"},
		},
		{
			name:       "key rotation updates the keyring in place",
			next:       rotated,
			wantCalls:  []string{"update web key_file content keys=2"},
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: 1 group(s) updated"},
			wantGroups: []string{"web", "db"},
		},
		{
			name: "restart is stop then start",
			next: loaded(group("web", func(g *config.Group) { g.Port = 7000 }), group("db")),
			wantCalls: []string{
				"stop web",
				"start web prio=100 keys=1",
			},
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: 1 group(s) restarted"},
			wantGroups: []string{"web", "db"},
		},
		{
			name: "private networks and log level",
			next: func() Loaded {
				l := loaded(group("web"), group("db"))
				l.Config.PrivateNetworks.MTU = 1400
				l.Config.Log.Level = "debug"
				return l
			}(),
			wantCalls:  []string{"log-level debug", "private-networks mtu=1400"},
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: private networks reconciled, log level changed"},
			wantGroups: []string{"web", "db"},
		},
		{
			name: "a change the daemon can only make at the next start",
			next: func() Loaded {
				l := loaded(group("web"), group("db"))
				l.Config.PrivateNetworks.MTU = 1400
				return l
			}(),
			failing:    map[string]error{"private-networks": ErrNeedsRestart},
			wantCalls:  []string{"private-networks mtu=1400"},
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reloaded: settings for the next start"},
			wantGroups: []string{"web", "db"},
		},
		{
			name:    "a failing change does not stop the others",
			next:    loaded(group("web", func(g *config.Group) { g.Priority = 1 }), group("cache")),
			failing: map[string]error{"stop db": errors.New("hand over group db: no peer took over")},
			wantCalls: []string{
				"stop db",
				"update web priority keys=1",
				"start cache prio=100 keys=1",
			},
			wantErr:    "reload: hand over group db: no peer took over",
			wantNotify: []string{"RELOADING=1", "READY=1\nSTATUS=reload partly failed: hand over group db: no peer took over"},
			wantGroups: []string{"web", "cache"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := &fakeTarget{failing: tt.failing}
			var notes []string
			r := New(loaded(group("web"), group("db")),
				func() (Loaded, error) { return tt.next, tt.loadErr },
				target,
				func(s string) error { notes = append(notes, s); return nil },
				slog.New(slog.DiscardHandler))
			err := r.Reload(context.Background())
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
			} else {
				require.NoError(t, err)
			}
			if tt.loadErr != nil {
				assert.ErrorIs(t, err, ErrRefused)
				assert.True(t, config.IsError(err), "the reason stays a config.Error")
			}
			assert.Equal(t, tt.wantCalls, target.calls)
			assert.Equal(t, tt.wantNotify, notes)
			var names []string
			for _, g := range r.Current().Config.Groups {
				names = append(names, g.Name)
			}
			assert.Equal(t, tt.wantGroups, names)
		})
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/web.key"
	require.NoError(t, writeKeyFile(good, "MDEyMzQ1Njc4OWFiY2RlZg==\n"))
	c := cfg(group("web", func(g *config.Group) { g.KeyFile = good }),
		group("open", func(g *config.Group) { g.KeyFile, g.Insecure = "", true }))
	keys, err := LoadKeys(c)
	require.NoError(t, err)
	assert.Equal(t, map[string][][]byte{"web": {[]byte("0123456789abcdef")}}, keys)

	c.Groups = append(c.Groups, group("db", func(g *config.Group) { g.KeyFile = dir + "/missing.key" }))
	_, err = LoadKeys(c)
	require.Error(t, err)
	assert.True(t, config.IsError(err), "a key file that does not load is a configuration error")
	assert.Contains(t, err.Error(), "groups[2].key_file: read gossip key file "+dir+"/missing.key")
}

func writeKeyFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func TestWatchReloadsOnSignal(t *testing.T) {
	reloaded := make(chan struct{}, 1)
	r := New(loaded(group("web")),
		func() (Loaded, error) { return loaded(group("web")), nil },
		&fakeTarget{},
		func(s string) error {
			if strings.HasPrefix(s, "READY=1") {
				reloaded <- struct{}{}
			}
			return nil
		},
		slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal)
	done := make(chan struct{})
	go func() { r.Watch(ctx, sig); close(done) }()
	sig <- syscall.SIGHUP
	<-reloaded
	sig <- syscall.SIGHUP
	<-reloaded
	cancel()
	<-done
}
