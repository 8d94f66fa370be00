package main

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/internal/metricstest"
	"github.com/hc-agent/hc-agent/metrics"
)

// metricDoc is one metric as documented: type, label names and help text.
type metricDoc struct {
	Type   string
	Labels []string
	Help   string
}

// registeredMetrics returns the metrics metrics.New registers (without the
// runtime collectors, which the README mentions in prose), by name.
func registeredMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, descs := metricstest.Registered(t, reg)
	got := map[string]metricDoc{}
	for name, d := range descs {
		got[name] = metricDoc{Labels: d.Labels, Help: d.Help}
	}

	// Give every vector a series so that Gather reports its type.
	failed := errors.New("failed")
	m.ObserveMetadata("summary", failed)
	m.ObserveRestore(metrics.KindAddress, false)
	m.ObserveRestore(metrics.KindRoute, true)
	m.ObserveReconcile(metrics.ComponentNetconf, time.Second, 1, failed)
	m.ObserveReconcile(metrics.ComponentNetconf, time.Second, 1, nil)
	m.SetBlackholed(true)
	m.SetReady(true)
	m.IncWatchdog()
	m.ObserveAPIRequest("GET /floating_ips", 429)
	m.SetRateLimit(3599, 3600)
	m.SetFloatingIP("192.0.2.1", true, true)
	m.SetPrivateIP("db", "10.0.1.100", true, true)
	m.SetGroup("web", "holder", 2, 2)
	m.ObserveMove("web", time.Second, "success")
	m.ObserveMovePhase("web", "action_succeeded", time.Second)
	m.IncGossipDecryptError("web")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		d, ok := got[mf.GetName()]
		require.True(t, ok, "gathered %s was not described", mf.GetName())
		d.Type = strings.ToLower(mf.GetType().String()) // COUNTER -> counter
		got[mf.GetName()] = d
	}
	for name, d := range got {
		require.NotEmpty(t, d.Type, "%s has no series: give it one in registeredMetrics", name)
	}
	return got
}

// readmeMetrics parses the metric table of the README's "## Metrics"
// section: | `name` | type | labels | meaning |.
func readmeMetrics(t *testing.T, readme string) map[string]metricDoc {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Metrics\n")
	require.True(t, ok, "README has no \"## Metrics\" section")
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	row := regexp.MustCompile("^\\| `([a-z_:]+)` \\| ([a-z]+) \\| *([a-z_, ]*?) *\\| (.+) \\|$")
	got := map[string]metricDoc{}
	for l := range strings.Lines(section) {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		sm := row.FindStringSubmatch(l)
		require.NotNil(t, sm, "README metric row not in the form | `name` | type | labels | meaning |: %s", l)
		var labels []string
		for _, s := range strings.Split(sm[3], ",") {
			if s = strings.TrimSpace(s); s != "" {
				labels = append(labels, s)
			}
		}
		_, dup := got[sm[1]]
		require.False(t, dup, "README lists %s twice", sm[1])
		got[sm[1]] = metricDoc{Type: sm[2], Labels: labels, Help: sm[4]}
	}
	require.NotEmpty(t, got, "README's metric table has no rows")
	return got
}

// TestReadmeMetricTable keeps the README's metric table equal to what the
// code registers: the same names, and for each its type, labels and help.
func TestReadmeMetricTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	doc := readmeMetrics(t, string(b))
	code := registeredMetrics(t)

	var names []string
	for n := range code {
		names = append(names, n)
	}
	for n := range doc {
		if _, ok := code[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			c, inCode := code[n]
			d, inDoc := doc[n]
			require.True(t, inCode, "README lists %s, which the code does not register", n)
			require.True(t, inDoc, "README does not list %s (%s, labels %v): add the row | `%s` | %s | %s | %s |",
				n, c.Type, c.Labels, n, c.Type, strings.Join(c.Labels, ", "), c.Help)
			assert.Equal(t, c, d, "README row of %s (expected: the code, actual: the README)", n)
		})
	}
}

// TestReadmeMetricsParser checks that the table parser rejects what it must,
// so that TestReadmeMetricTable can fail.
func TestReadmeMetricsParser(t *testing.T) {
	readme := "# x\n\n## Metrics\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n" +
		"| `hcagent_a_total` | counter | group, result | A things. |\n| `hcagent_b` | gauge | | B. |\n\n## Next\n\n| `hcagent_c` | gauge | | not in the section |\n"
	got := readmeMetrics(t, readme)
	assert.Equal(t, map[string]metricDoc{
		"hcagent_a_total": {Type: "counter", Labels: []string{"group", "result"}, Help: "A things."},
		"hcagent_b":       {Type: "gauge", Help: "B."},
	}, got)
}
