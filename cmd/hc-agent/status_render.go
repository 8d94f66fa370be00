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
// group, the members, the floating IPs with their holder by the API and
// locally, and the last move.
func WriteStatus(w io.Writer, v StatusView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("hc-agent\t%s\n", v.Version)
	p("server\t%s (instance %d)\n", orDash(v.Hostname), v.InstanceID)
	p("uptime\t%s\n", (time.Duration(v.UptimeSeconds) * time.Second).String())
	ready := "no"
	if v.Ready {
		ready = "yes"
	}
	p("ready\t%s\n", ready)
	p("status\t%s\n", v.Status.Status)
	if v.MetadataBlackholed {
		p("metadata\tBLACK-HOLED: 169.254.169.254 routes through a private network\n")
	}
	names := make([]string, 0, len(v.Components))
	for n := range v.Components {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		p("\nCOMPONENT\tLAST RUN\tDURATION\tCHANGES\tRESULT\n")
		for _, n := range names {
			c := v.Components[n]
			res := "ok"
			if c.Error != "" {
				res = "error: " + c.Error
			}
			p("%s\t%s\t%s\t%d\t%s\n", n, c.LastRun.Format(time.RFC3339),
				time.Duration(c.DurationSeconds*float64(time.Second)).Round(time.Microsecond), c.Changes, res)
		}
	}
	for _, g := range v.Groups {
		health := "healthy"
		if !g.Healthy {
			health = "unhealthy"
		}
		p("\ngroup %s\t%s, %s, mode %s\n", g.Name, g.Role, health, g.Mode)
		if g.Decision != "" {
			p("decision\t%s\n", g.Decision)
		}
		if g.SecondPath != "" {
			p("second path\t%s\n", g.SecondPath)
		}
		if g.Gossip != "" {
			p("gossip\t%s\n", g.Gossip)
		}
		p("MEMBER\tID\tPRIORITY\tALIVE\tHEALTHY\tHOLDING\n")
		for _, m := range g.Members {
			name := orDash(m.Name)
			if m.ID == g.Self {
				name += " (this server)"
			}
			p("%s\t%d\t%d\t%s\t%s\t%s\n", name, m.ID, m.Priority, yesNo(m.Alive), yesNo(m.Healthy), yesNo(m.Holding))
		}
		p("%s\tHOLDER (API)\tHOLDER (VIEW)\tCONFIGURED HERE\n", addressHeader(g.Kind))
		for _, f := range g.FloatingIPs {
			p("%s\t%s\t%s\t%s\n", addressLabel(f, g.Kind), holder(f.HolderByAPI, g.Self), holder(f.HolderByView, g.Self), yesNo(f.ConfiguredHere))
		}
		if m := g.LastMove; m != nil {
			line := fmt.Sprintf("%s %d -> %d %s in %s", m.At.Format(time.RFC3339), m.From, m.To, m.Result, m.Duration.Round(time.Millisecond))
			if m.Error != "" {
				line += ": " + m.Error
			}
			p("last move\t%s\n", line)
		}
	}
	return tw.Flush()
}

func holder(id, self int64) string {
	switch id {
	case 0:
		return "-"
	case self:
		return strconv.FormatInt(id, 10) + " (this server)"
	}
	return strconv.FormatInt(id, 10)
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
