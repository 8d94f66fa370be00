package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/scenario"
)

// privateVIPDelay is the action latency of the private VIP trials.
const privateVIPDelay = time.Second

// runPrivateVIP measures the crash outage of private VIPs (issue 12): an
// alias VIP and a route VIP moved by hc-agent, next to keepalived with the
// guides' read-modify-write change_alias_ips script, and the API requests
// each move costs.
func runPrivateVIP(ctx context.Context, h *harness) bench.Section {
	sec := bench.Section{Method: fmt.Sprintf("three servers in one private network, a group holding one private VIP "+
		"(alias: 10.1.0.100 in the subnet; route: 10.1.5.50/32 via the holder's private IP), action latency %v; "+
		"a client server in the same network requests the VIP every 10 ms (250 ms timeout each); Cloud.Crash of the API's holder; "+
		"outage = longest run of failed requests; requests per move = every API request of every server from the crash until 2 s after "+
		"the new holder answered; keepalived: Debian keepalived 2.2.7, unicast VRRP, advert_int 1, nopreempt, the VIP on the private NIC, "+
		"notify_master script (curl + jq) that removes the VIP from the old holder's alias list and adds it to its own, read-modify-write, "+
		"polling each action every 1 s", privateVIPDelay)}
	if r := h.needRoot(); r != "" {
		sec.Unavailable = r
		return sec
	}
	type run struct {
		subject string
		via     config.Via
	}
	runs := []run{{bench.SubjectAgent, config.ViaAlias}, {bench.SubjectAgent, config.ViaRoute}, {bench.SubjectKeepalived, config.ViaAlias}}
	results := map[run]*scenario.PrivateOutages{}
	for _, r := range runs {
		if r.subject == bench.SubjectAgent {
			if why := h.needAgent(); why != "" {
				sec.Notes = append(sec.Notes, "hc-agent not available: "+why)
				continue
			}
		}
		if ctx.Err() != nil {
			break
		}
		res := scenario.RunPrivateOutages(ctx, h.env(), r.subject, r.via, privateVIPDelay)
		results[r] = &res
		kase := string(r.via) + " VIP, crash"
		if res.Crash.N > 0 || res.Crash.Failed > 0 {
			sec.Rows = append(sec.Rows, bench.DurationRow(r.subject, kase, res.Crash))
		}
		if res.Crash.N > 0 {
			sec.Rows = append(sec.Rows, bench.ValueRow(r.subject, string(r.via)+" VIP, API requests per move", res.RequestsPerMove, "req"))
		}
		if res.Resets > 0 {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%s %s: the cluster was found inconsistent %d time(s) and reset; not counted as trials", r.subject, r.via, res.Resets))
		}
		if res.Err != nil {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%s %s: %v", r.subject, r.via, res.Err))
		}
	}
	if a, k := results[run{bench.SubjectAgent, config.ViaAlias}], results[run{bench.SubjectKeepalived, config.ViaAlias}]; a != nil && k != nil {
		sec.Rows = append(sec.Rows, ratioRows("alias VIP, crash", &a.Crash, &k.Crash)...)
	}
	if len(sec.Rows) == 0 {
		sec.Unavailable = "no trial completed; see notes"
	}
	return sec
}
