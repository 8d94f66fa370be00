package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
)

// Loaded is a configuration as the daemon loaded it: checked, with the API
// token resolved and the key files read.
type Loaded struct {
	Config config.Config
	// Keys are the parsed keys of each group's key file, by group name.
	Keys map[string][][]byte
}

// keyFiles is the content Compute compares: the keys, one per line.
func (l Loaded) keyFiles() KeyFiles {
	out := KeyFiles{}
	for name, keys := range l.Keys {
		var b strings.Builder
		for _, k := range keys {
			b.Write(k)
			b.WriteByte('\n')
		}
		out[name] = []byte(b.String())
	}
	return out
}

// LoadFunc loads and checks the configuration again, as at start: the
// file, the token file, the key files. Its error is the reason the reload
// is refused (one line; the daemon prints every problem to its log).
type LoadFunc func() (Loaded, error)

// Target is what a reload changes on the running daemon. Each method is
// called with the new settings only when Plan says so.
type Target interface {
	// StartGroup starts a new group.
	StartGroup(ctx context.Context, g config.Group, keys [][]byte) error
	// StopGroup hands the group's IPs to a healthy peer and stops it.
	StopGroup(ctx context.Context, name string) error
	// UpdateGroup applies in-place changes (GroupPlan.Changed) to a
	// running group without dropping what it holds; keys is the new
	// keyring (see floatingip.Gossip.SetKeys).
	UpdateGroup(ctx context.Context, gp GroupPlan, keys [][]byte) error
	// ReconcilePrivateNetworks applies new private_networks settings at
	// once.
	ReconcilePrivateNetworks(ctx context.Context, pn config.PrivateNetworks) error
	// SetLogLevel changes the log level in place.
	SetLogLevel(level string) error
}

// Notify sends one sd_notify message (daemon.SdNotify in the daemon).
type Notify func(state string) error

// Reloader carries out reloads one at a time.
type Reloader struct {
	load   LoadFunc
	target Target
	notify Notify
	log    *slog.Logger

	mu  sync.Mutex
	cur Loaded
}

// New returns a Reloader for a daemon that runs with cur.
func New(cur Loaded, load LoadFunc, target Target, notify Notify, log *slog.Logger) *Reloader {
	return &Reloader{cur: cur, load: load, target: target, notify: notify, log: log}
}

// ErrNeedsRestart is what a Target returns for a change it can only make
// at the next start: the reload warns and goes on.
var ErrNeedsRestart = errors.New("takes effect at the next start")

// ErrRefused wraps the reason a new configuration was refused: the running
// one stays.
var ErrRefused = errors.New("new configuration refused, the running one stays")

// Reload loads the configuration again and applies what changed. It tells
// systemd RELOADING=1 first and READY=1 with a STATUS= line at the end, so
// that `systemctl reload` waits for it. A configuration that does not load
// is refused: nothing changes, and the error (wrapping ErrRefused) says why.
// A change that fails to apply is logged and returned, and the rest is
// still applied; the configuration it was part of becomes the running one,
// as far as it applied.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.send("RELOADING=1")
	next, err := r.load()
	if err != nil {
		r.log.Error("reload refused: the running configuration stays", "err", err)
		r.send("READY=1\nSTATUS=reload refused: " + oneLine(err.Error()))
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	plan := Compute(r.cur.Config, next.Config, r.cur.keyFiles(), next.keyFiles())
	if !plan.Changed() {
		r.log.Info("reload: nothing changed")
		r.send("READY=1\nSTATUS=reloaded: nothing changed")
		return nil
	}
	errs, deferred := r.apply(ctx, plan, next)
	for _, d := range deferred {
		switch d {
		case "log level":
			plan.LogLevel = false
		case "private networks":
			plan.PrivateNetworks = false
		}
		plan.AtRestart = append(plan.AtRestart, d)
	}
	r.cur = next
	if len(plan.AtRestart) > 0 {
		r.log.Warn("reload: these settings take effect at the next start", "keys", strings.Join(plan.AtRestart, ","))
	}
	if err := errors.Join(errs...); err != nil {
		r.send("READY=1\nSTATUS=reload partly failed: " + oneLine(err.Error()))
		return fmt.Errorf("reload: %w", err)
	}
	r.send("READY=1\nSTATUS=reloaded: " + describe(plan))
	return nil
}

func (r *Reloader) apply(ctx context.Context, plan Plan, next Loaded) (errs []error, deferred []string) {
	fail := func(what string, err error) {
		if err != nil {
			r.log.Error("reload: "+what+" failed", "err", err)
			errs = append(errs, err)
		}
	}
	later := func(what string, err error) {
		if errors.Is(err, ErrNeedsRestart) {
			deferred = append(deferred, what)
			return
		}
		fail(what, err)
	}
	if plan.LogLevel {
		later("log level", r.target.SetLogLevel(next.Config.Log.Level))
	}
	if plan.PrivateNetworks {
		later("private networks", r.target.ReconcilePrivateNetworks(ctx, next.Config.PrivateNetworks))
	}
	// Removed groups first, so that a group renamed in one edit hands over
	// before its successor starts; then restarts and updates, then new ones.
	for _, gp := range plan.Groups {
		if gp.Action == Stop {
			r.log.Info("reload: stopping a removed group", "group", gp.Name)
			fail("stop group "+gp.Name, r.target.StopGroup(ctx, gp.Name))
		}
	}
	for _, gp := range plan.Groups {
		switch gp.Action {
		case Restart:
			r.log.Info("reload: restarting a group", "group", gp.Name, "changed", strings.Join(gp.Changed, ","))
			if err := r.target.StopGroup(ctx, gp.Name); err != nil {
				fail("restart group "+gp.Name, err)
				continue
			}
			fail("restart group "+gp.Name, r.target.StartGroup(ctx, gp.New, next.Keys[gp.Name]))
		case Update:
			r.log.Info("reload: updating a group in place", "group", gp.Name, "changed", strings.Join(gp.Changed, ","))
			fail("update group "+gp.Name, r.target.UpdateGroup(ctx, gp, next.Keys[gp.Name]))
		}
	}
	for _, gp := range plan.Groups {
		if gp.Action == Start {
			r.log.Info("reload: starting a new group", "group", gp.Name)
			fail("start group "+gp.Name, r.target.StartGroup(ctx, gp.New, next.Keys[gp.Name]))
		}
	}
	return errs, deferred
}

// Current returns the running configuration.
func (r *Reloader) Current() Loaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *Reloader) send(state string) {
	if r.notify == nil {
		return
	}
	if err := r.notify(state); err != nil {
		r.log.Debug("sd_notify", "err", err)
	}
}

// describe summarises a plan for STATUS=.
func describe(p Plan) string {
	counts := map[GroupAction]int{}
	for _, g := range p.Groups {
		counts[g.Action]++
	}
	var parts []string
	for _, a := range []GroupAction{Start, Stop, Update, Restart} {
		if n := counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d group(s) %s", n, verb(a)))
		}
	}
	if p.PrivateNetworks {
		parts = append(parts, "private networks reconciled")
	}
	if p.LogLevel {
		parts = append(parts, "log level changed")
	}
	if len(parts) == 0 {
		parts = append(parts, "settings for the next start")
	}
	return strings.Join(parts, ", ")
}

func verb(a GroupAction) string {
	switch a {
	case Start:
		return "started"
	case Stop:
		return "stopped"
	case Update:
		return "updated"
	case Restart:
		return "restarted"
	}
	return a.String()
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// LoadKeys reads the key file of every group of c that has one.
func LoadKeys(c config.Config) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	var errs []error
	for i, g := range c.Groups {
		if g.KeyFile == "" {
			continue
		}
		keys, err := floatingip.LoadKeyFile(g.KeyFile)
		if err != nil {
			errs = append(errs, &config.Error{Err: fmt.Errorf("groups[%d].key_file: %w", i, err)})
			continue
		}
		out[g.Name] = keys
	}
	return out, errors.Join(errs...)
}

// Watch reloads on every value from sig (SIGHUP, from signal.Notify) until
// ctx is done; a refused or partly failed reload is logged by Reload. It
// returns when ctx is done.
func (r *Reloader) Watch(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			r.log.Info("reload requested", "signal", s.String())
			_ = r.Reload(ctx) // logged there; nobody waits for a signal's answer
		}
	}
}
