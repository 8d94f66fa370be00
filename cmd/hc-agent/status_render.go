package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hc-agent/hc-agent/agent"

	"github.com/hc-agent/hc-agent/floatingip"
)

// maxStatusBody bounds what FetchStatus reads.
const maxStatusBody = 4 << 20

// StatusView is the /status document as a client decodes it, with the
// groups typed.
type StatusView struct {
	agent.Status
	Groups []floatingip.Status `json:"groups"`
}

// FetchStatus GETs /status from the agent listening on addr (host:port) and
// returns the raw document and its decoded view. A daemon that is not
// running gives an error that says so in one line.
func FetchStatus(ctx context.Context, addr string) ([]byte, StatusView, error) {
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, StatusView{}, fmt.Errorf("get agent status from %s: %w", addr, err)
	}
	// Loopback only by default; never through a proxy.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, StatusView{}, fmt.Errorf("hc-agent is not running (nothing listens on %s): %w", addr, err)
		}
		return nil, StatusView{}, fmt.Errorf("get agent status from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return nil, StatusView{}, fmt.Errorf("read agent status from %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, StatusView{}, fmt.Errorf("get agent status from %s: HTTP %d", addr, resp.StatusCode)
	}
	var v StatusView
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, StatusView{}, fmt.Errorf("decode agent status from %s: %w", addr, err)
	}
	return body, v, nil
}

// WriteStatus renders v for people: the agent, its components and, per
// group, the members (by name), the floating IPs with their holder by the
// API and locally, and the last move. Each table sizes its columns for
// itself.
func WriteStatus(w io.Writer, v StatusView) error {
	var err error
	// table writes one block of tab-separated rows, aligned on its own.
	table := func(rows ...string) {
		if err != nil || len(rows) == 0 {
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range rows {
			fmt.Fprintln(tw, r)
		}
		err = tw.Flush()
	}
	line := func(s string) {
		if err == nil {
			_, err = fmt.Fprintln(w, s)
		}
	}
	ready := "no"
	if v.Ready {
		ready = "yes"
	}
	head := []string{
		"hc-agent\t" + v.Version,
		fmt.Sprintf("server\t%s (instance %d)", orDash(v.Hostname), v.InstanceID),
		"uptime\t" + (time.Duration(v.UptimeSeconds) * time.Second).String(),
		"ready\t" + ready,
		"status\t" + v.Status.Status,
	}
	if v.MetadataBlackholed {
		head = append(head, "metadata\tBLACK-HOLED: 169.254.169.254 routes through a private network")
	}
	table(head...)
	names := make([]string, 0, len(v.Components))
	for n := range v.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		line("")
		rows := []string{"COMPONENT\tLAST RUN\tDURATION\tCHANGES\tRESULT"}
		for _, n := range names {
			c := v.Components[n]
			res := "ok"
			if c.Error != "" {
				res = "error: " + c.Error
			}
			name := n
			if c.Mode != "" {
				name += " (" + c.Mode + ")" // the floating IP manager: reader or follower
			}
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%d\t%s", name, c.LastRun.Format(time.RFC3339),
				time.Duration(c.DurationSeconds*float64(time.Second)).Round(time.Microsecond), c.Changes, res))
		}
		table(rows...)
	}
	for _, g := range v.Groups {
		health := "healthy"
		if !g.Healthy {
			health = "unhealthy"
		}
		state := fmt.Sprintf("%s, %s, mode %s", g.Role, health, g.Mode)
		if g.Drained {
			state += ", DRAINED (hc-agent handover --resume to take part again)"
		}
		line("")
		info := []string{"group " + g.Name + "\t" + state}
		if g.Decision != "" {
			info = append(info, "decision\t"+g.Decision)
		}
		if g.SecondPath != "" {
			info = append(info, "second path\t"+g.SecondPath)
		}
		if g.Gossip != "" {
			info = append(info, "gossip\t"+g.Gossip)
		}
		if m := g.LastMove; m != nil {
			l := fmt.Sprintf("%s %d -> %d %s in %s", m.At.Format(time.RFC3339), m.From, m.To, m.Result, m.Duration.Round(time.Millisecond))
			if m.Error != "" {
				l += ": " + m.Error
			}
			info = append(info, "last move\t"+l)
		}
		table(info...)
		names := map[int64]string{}
		rows := []string{"MEMBER\tID\tPRIORITY\tALIVE\tHEALTHY\tHOLDING"}
		for _, m := range g.Members {
			name := memberName(m)
			names[m.ID] = name
			if m.ID == g.Self {
				name += " (this server)"
			}
			rows = append(rows, fmt.Sprintf("%s\t%d\t%d\t%s\t%s\t%s", name, m.ID, m.Priority, yesNo(m.Alive), yesNo(m.Healthy), yesNo(m.Holding)))
		}
		table(rows...)
		rows = []string{addressHeader(g.Kind) + "\tHOLDER (API)\tHOLDER (VIEW)\tCONFIGURED HERE"}
		for _, f := range g.FloatingIPs {
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s", addressLabel(f, g.Kind), holderName(f.HolderByAPI, g.Self, names), holderName(f.HolderByView, g.Self, names), yesNo(f.ConfiguredHere)))
		}
		table(rows...)
		if m := g.LastMove; m != nil && len(m.Timeline.Marks) > 0 {
			tl := m.Timeline
			rows = []string{"PHASE\tAT\tTOOK"}
			for i, pm := range tl.Marks {
				took := "-"
				if i > 0 {
					took = time.Duration(pm.Seconds * float64(time.Second)).Round(time.Millisecond).String()
				}
				name := string(pm.Phase)
				if pm.Phase == floatingip.PhaseFailureSeen {
					name += " (" + string(tl.Failure) + ")"
				}
				rows = append(rows, fmt.Sprintf("%s\t%s\t%s", name, pm.At.Format("15:04:05.000"), took))
			}
			table(rows...)
		}
	}
	return err
}

// memberName is a member's hostname; the ID when it advertises none (its
// node name is the ID itself).
func memberName(m floatingip.Member) string {
	id := strconv.FormatInt(m.ID, 10)
	if m.Name == "" || m.Name == id {
		return "-"
	}
	return m.Name
}

// holderName names a holder by the members' names, "-" for none.
func holderName(id, self int64, names map[int64]string) string {
	if id == 0 {
		return "-"
	}
	s := strconv.FormatInt(id, 10)
	n := names[id]
	switch {
	case id == self && n != "" && n != "-":
		return n + " (this server)"
	case id == self:
		return s + " (this server)"
	case n != "" && n != "-":
		return n + " (" + s + ")"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
