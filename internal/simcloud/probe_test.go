package simcloud

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestOutages(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(ms int, srv string) Sample { return Sample{At: at(ms), Server: srv} }
	fail := func(ms int) Sample { return Sample{At: at(ms), Err: errors.New("timeout")} }
	tests := []struct {
		name    string
		samples []Sample
		want    []Outage
		longest time.Duration
	}{
		{name: "none", samples: []Sample{ok(0, "a"), ok(10, "a")}},
		{
			name:    "failover",
			samples: []Sample{ok(0, "a"), fail(10), fail(20), ok(30, "b")},
			want:    []Outage{{From: at(10), To: at(30), Failures: 2, Before: "a", After: "b"}},
			longest: 20 * time.Millisecond,
		},
		{
			name:    "unordered input",
			samples: []Sample{ok(30, "b"), fail(20), ok(0, "a"), fail(10)},
			want:    []Outage{{From: at(10), To: at(30), Failures: 2, Before: "a", After: "b"}},
			longest: 20 * time.Millisecond,
		},
		{
			name:    "two outages, longest second",
			samples: []Sample{fail(0), ok(10, "a"), fail(20), fail(30), fail(40), ok(50, "a")},
			want: []Outage{
				{From: at(0), To: at(10), Failures: 1, After: "a"},
				{From: at(20), To: at(50), Failures: 3, Before: "a", After: "a"},
			},
			longest: 30 * time.Millisecond,
		},
		{
			name:    "ongoing",
			samples: []Sample{ok(0, "a"), fail(10)},
			want:    []Outage{{From: at(10), Failures: 1, Before: "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Outages(tt.samples))
			got, found := LongestOutage(tt.samples)
			assert.Equal(t, tt.longest != 0, found)
			assert.Equal(t, tt.longest, got.Duration())
		})
	}
}
