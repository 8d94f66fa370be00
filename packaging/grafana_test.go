package packaging

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hc-agent/hc-agent/internal/metricstest"
)

const dashboardFile = "grafana/hc-agent.json"

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"instance", "job"}

// registryLabels returns the label names of every metric metrics.New
// registers, by name.
func registryLabels(t *testing.T) map[string][]string {
	t.Helper()
	_, descs := metricstest.Registered(t, prometheus.NewRegistry())
	out := map[string][]string{}
	for name, d := range descs {
		out[name] = d.Labels
	}
	return out
}

// query is one PromQL expression of the dashboard with what it is for.
type query struct {
	where  string // panel title or variable name
	expr   string
	legend string
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// dashboardQueries returns every expression of the dashboard: panel
// targets (rows included) and the metric selectors of label_values()
// variables, as PromQL.
func dashboardQueries(t *testing.T, b []byte) []query {
	t.Helper()
	var d struct {
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	var out []query
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{where: p.Title, expr: tg.Expr, legend: tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]\w*)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		sm := labelValues.FindStringSubmatch(s)
		require.NotNil(t, sm, "variable %s: want label_values(SELECTOR, LABEL), got %q", v.Name, s)
		// The label read must exist on the selected series.
		out = append(out, query{where: "variable " + v.Name, expr: sm[1], legend: "{{" + sm[2] + "}}"})
	}
	return out
}

// grafanaVars replaces Grafana's variables by values PromQL parses: ranges
// for $__rate_interval and friends, a regexp for the dashboard's own.
func grafanaVars(expr string) string {
	for _, v := range []string{"$__rate_interval", "$__interval", "$__range"} {
		expr = strings.ReplaceAll(expr, v, "5m")
	}
	return regexp.MustCompile(`\$\{?\w+\}?`).ReplaceAllString(expr, ".*")
}

var (
	selectorRE = regexp.MustCompile(`\b(hcagent_\w+)\s*(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	legendRE   = regexp.MustCompile(`\{\{\s*([a-zA-Z_]\w*)\s*\}\}`)
)

// queryProblems checks one expression against the metric names and label
// names in known: every hcagent_ metric exists (a histogram's _bucket, _sum
// and _count by its base name; _bucket adds le), every matcher uses a label
// of its metric, and every grouping label and legend label is one of a
// metric the expression reads.
func queryProblems(q query, known map[string][]string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, q.where+": "+fmt.Sprintf(format, args...))
	}
	available := slices.Clone(targetLabels)
	sels := selectorRE.FindAllStringSubmatch(q.expr, -1)
	if len(sels) == 0 {
		bad("no hcagent_ metric in %q", q.expr)
	}
	for _, sm := range sels {
		name := sm[1]
		labels, ok := known[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(name, suffix); cut {
					if labels, ok = known[base]; ok && suffix == "_bucket" {
						labels = append(slices.Clone(labels), "le")
					}
					break
				}
			}
		}
		if !ok {
			bad("unknown metric %s", name)
			continue
		}
		own := append(slices.Clone(targetLabels), labels...)
		available = append(available, labels...)
		for _, m := range matcherRE.FindAllStringSubmatch(sm[2], -1) {
			if !slices.Contains(own, m[1]) {
				bad("%s has no label %s", name, m[1])
			}
		}
	}
	for _, g := range groupingRE.FindAllStringSubmatch(q.expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(available, l) {
				bad("groups by %s, which no metric of the expression has", l)
			}
		}
	}
	for _, l := range legendRE.FindAllStringSubmatch(q.legend, -1) {
		if !slices.Contains(available, l[1]) {
			bad("legend uses %s, which no metric of the expression has", l[1])
		}
	}
	return problems
}

// TestDashboardMetrics checks that every metric the Grafana dashboard
// queries exists in the agent's registry with the labels it uses.
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	queries := dashboardQueries(t, b)
	require.NotEmpty(t, queries)

	known := registryLabels(t)
	for _, q := range queries {
		for _, p := range queryProblems(q, known) {
			t.Error(p)
		}
	}

	// The checker must be able to fail.
	for _, tc := range []struct {
		name string
		q    query
		want string
	}{
		{"unknown metric", query{where: "p", expr: `rate(hcagent_nope_total[5m])`}, "p: unknown metric hcagent_nope_total"},
		{"unknown matcher label", query{where: "p", expr: `hcagent_ready{group="x"}`}, "p: hcagent_ready has no label group"},
		{"unknown grouping label", query{where: "p", expr: `sum by (ip) (hcagent_group_role)`}, "p: groups by ip, which no metric of the expression has"},
		{"unknown legend label", query{where: "p", expr: `hcagent_group_role`, legend: "{{component}}"}, "p: legend uses component, which no metric of the expression has"},
		{"le only on buckets", query{where: "p", expr: `sum by (le) (hcagent_group_failover_duration_seconds_count)`}, "p: groups by le, which no metric of the expression has"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, []string{tc.want}, queryProblems(tc.q, known))
		})
	}

	// Every metric the registry has is on the dashboard, or deliberately
	// not (process-level ones).
	notShown := []string{"hcagent_start_time_seconds", "hcagent_watchdog_pings_total", "hcagent_metadata_requests_total",
		"hcagent_metadata_request_errors_total", "hcagent_reconcile_runs_total", "hcagent_reconcile_duration_seconds",
		"hcagent_netlink_changes_total"}
	var missing []string
	for name := range known {
		if !strings.Contains(string(b), name) && !slices.Contains(notShown, name) {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "metrics neither on the dashboard nor in notShown")
}

// TestDashboardPromQL parses every expression of the dashboard with
// promtool, as recording rules.
func TestDashboardPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it): skipping the PromQL check")
	}
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	queries := dashboardQueries(t, b)
	check := func(qs []query) ([]byte, error) {
		type rule struct {
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		}
		var rules []rule
		for i, q := range qs {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaVars(q.expr)})
		}
		doc, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), "dashboard-rules.yml")
		require.NoError(t, os.WriteFile(p, doc, 0o644))
		return exec.Command(promtool, "check", "rules", p).CombinedOutput()
	}
	out, err := check(queries)
	require.NoError(t, err, "promtool check rules:\n%s", out)
	assert.Contains(t, string(out), fmt.Sprintf("SUCCESS: %d rules found", len(queries)))

	out, err = check([]query{{expr: `sum by (group (hcagent_group_role)`}})
	assert.Error(t, err, "promtool accepted a broken expression:\n%s", out)
}
