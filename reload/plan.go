// Package reload decides what a configuration reload (systemctl reload,
// SIGHUP, hc-agent reload) changes on a running daemon: which groups start,
// stop, change in place or restart, whether private networks reconcile at
// once, and which keys only take effect at the next start. Plan is a pure
// function of the running and the new configuration; the daemon carries it
// out. The new configuration has been loaded and validated already: an
// invalid one is refused before Plan.
package reload

import (
	"reflect"
	"slices"
	"sort"

	"github.com/hc-agent/hc-agent/config"
)

// GroupAction is what happens to one group on reload.
type GroupAction int

const (
	// Keep: nothing changed.
	Keep GroupAction = iota
	// Start: a new group.
	Start
	// Stop: a removed group hands its IPs over to a healthy peer, then
	// stops.
	Stop
	// Update: changes that apply in place (priority, peers, preemption,
	// move cap, health check, gossip keys): the group keeps running and
	// keeps what it holds.
	Update
	// Restart: changes a running group cannot take (its addresses, mode,
	// bind address or port, encryption on or off, the peer selector): it
	// hands over to a healthy peer, stops and starts
	// with the new settings. The addresses stay served (by the peer) all
	// along, but a holder gives them up.
	Restart
)

func (a GroupAction) String() string {
	switch a {
	case Keep:
		return "keep"
	case Start:
		return "start"
	case Stop:
		return "stop"
	case Update:
		return "update"
	case Restart:
		return "restart"
	}
	return "GroupAction(?)"
}

// GroupPlan is the plan for one group.
type GroupPlan struct {
	Name   string
	Action GroupAction
	// Changed names the changed keys (group keys as in the file, such as
	// "priority" or "health"; "key_file content" for a changed key file).
	Changed []string
	Old     config.Group // zero for Start
	New     config.Group // zero for Stop
}

// Plan is what a reload changes.
type Plan struct {
	// Groups are every group of either configuration, in the order of the
	// new configuration, then the removed ones in the old order.
	Groups []GroupPlan
	// PrivateNetworks is true when the private_networks settings changed:
	// reconcile them at once.
	PrivateNetworks bool
	// LogLevel is true when log.level changed (applied in place).
	LogLevel bool
	// AtRestart lists the changed keys that only take effect when the
	// daemon starts again, for a warning.
	AtRestart []string
}

// Changed reports whether the plan changes anything at all.
func (p Plan) Changed() bool {
	if p.PrivateNetworks || p.LogLevel || len(p.AtRestart) > 0 {
		return true
	}
	for _, g := range p.Groups {
		if g.Action != Keep {
			return true
		}
	}
	return false
}

// KeyFiles holds the content of each group's key file by group name, read
// when the configuration was loaded: a key file whose content changed under
// an unchanged key_file path is an Update (new keyring).
type KeyFiles map[string][]byte

// inPlace are the group keys a running group takes without a restart
// (floatingip.Group.Update and SetHealth, Gossip.SetPeers and SetKeys). A
// new peer selector needs an API lookup: it restarts.
var inPlace = map[string]bool{
	"priority": true, "peers": true, "preempt": true, "health": true,
	"preempt_delay": true, "max_moves_per_minute": true, "key_file": true,
}

// Compute returns the plan from the running configuration (old, with its
// key files) to the new one.
func Compute(old, new config.Config, oldKeys, newKeys KeyFiles) Plan {
	var p Plan
	oldByName := map[string]config.Group{}
	for _, g := range old.Groups {
		oldByName[g.Name] = g
	}
	seen := map[string]bool{}
	for _, ng := range new.Groups {
		seen[ng.Name] = true
		og, ok := oldByName[ng.Name]
		if !ok {
			p.Groups = append(p.Groups, GroupPlan{Name: ng.Name, Action: Start, New: ng})
			continue
		}
		changed := groupDiff(og, ng)
		if string(oldKeys[ng.Name]) != string(newKeys[ng.Name]) && !slices.Contains(changed, "key_file") {
			changed = append(changed, "key_file content")
		}
		gp := GroupPlan{Name: ng.Name, Action: Keep, Changed: changed, Old: og, New: ng}
		for _, k := range changed {
			if gp.Action == Keep {
				gp.Action = Update
			}
			if !inPlace[k] && k != "key_file content" {
				gp.Action = Restart
			}
		}
		// Turning encryption on or off is not a keyring change.
		if (og.KeyFile == "") != (ng.KeyFile == "") {
			gp.Action = Restart
		}
		p.Groups = append(p.Groups, gp)
	}
	for _, og := range old.Groups {
		if !seen[og.Name] {
			p.Groups = append(p.Groups, GroupPlan{Name: og.Name, Action: Stop, Old: og})
		}
	}

	p.PrivateNetworks = !reflect.DeepEqual(old.PrivateNetworks, new.PrivateNetworks)
	p.LogLevel = old.Log.Level != new.Log.Level
	restart := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			p.AtRestart = append(p.AtRestart, key)
		}
	}
	restart("log.format", old.Log.Format, new.Log.Format)
	restart("state_dir", old.StateDir, new.StateDir)
	restart("runtime_dir", old.RuntimeDir, new.RuntimeDir)
	restart("metadata", old.Metadata, new.Metadata)
	restart("api.endpoint", old.API.Endpoint, new.API.Endpoint)
	restart("api.poll_interval", old.API.PollInterval, new.API.PollInterval)
	// The floating IP manager and the public NIC's applier are built once
	// (a reload that said "reloaded" for a new label selector, and applied
	// nothing, misled).
	restart("floating_ips", old.FloatingIPs, new.FloatingIPs)
	// The API client holds the token it was built with (the value never
	// leaves this comparison).
	if old.API.Token.Reveal() != new.API.Token.Reveal() {
		p.AtRestart = append(p.AtRestart, "api.token")
	}
	restart("metrics", old.Metrics, new.Metrics)
	sort.Strings(p.AtRestart)
	return p
}

// groupDiff returns the yaml keys of Group whose values differ.
func groupDiff(a, b config.Group) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name := t.Field(i).Tag.Get("yaml")
			out = append(out, name)
		}
	}
	return out
}
