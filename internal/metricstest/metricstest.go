// Package metricstest describes the metrics that metrics.New registers, for
// the tests that keep the README's metric table and the Grafana dashboard
// equal to the code: one helper instead of a copy in each.
package metricstest

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metrics"
)

// Metric is one registered metric: its label names and help text.
type Metric struct {
	Labels []string
	Help   string
}

// recorder remembers the collectors registered on it, so that every metric
// can be described, vectors without a series included.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), .*variableLabels: \{([^}]*)\}\}$`)

// Registered calls metrics.New on reg and returns the Metrics with every
// metric it registered (without the runtime collectors), by name.
func Registered(t testing.TB, reg prometheus.Registerer) (*metrics.Metrics, map[string]Metric) {
	t.Helper()
	rec := &recorder{Registerer: reg}
	m := metrics.New(rec, metrics.BuildInfo{Version: "v0", Commit: "c0"})
	out := map[string]Metric{}
	ch := make(chan *prometheus.Desc, 16)
	go func() { // exits after describing every collector
		for _, c := range rec.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		sm := descRE.FindStringSubmatch(d.String())
		require.NotNil(t, sm, "unexpected descriptor format: %s", d)
		name, err := strconv.Unquote(sm[1])
		require.NoError(t, err)
		help, err := strconv.Unquote(sm[2])
		require.NoError(t, err)
		var labels []string
		if sm[3] != "" {
			labels = strings.Split(sm[3], ",")
		}
		out[name] = Metric{Labels: labels, Help: help}
	}
	return m, out
}
