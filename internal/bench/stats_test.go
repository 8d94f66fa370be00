package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	twenty := ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	tests := []struct {
		name    string
		samples []time.Duration
		failed  int
		want    Summary
	}{
		{name: "empty", failed: 3, want: Summary{Failed: 3}},
		{name: "one", samples: ms(7), want: Summary{N: 1, Min: ms(7)[0], P50: ms(7)[0], P95: ms(7)[0], Max: ms(7)[0], Mean: ms(7)[0]}},
		{name: "two", samples: ms(4, 2), want: Summary{N: 2, Min: ms(2)[0], P50: ms(2)[0], P95: ms(4)[0], Max: ms(4)[0], Mean: ms(3)[0]}},
		{
			// Nearest rank: p50 of 20 is the 10th, p95 the 19th sample.
			name: "twenty unsorted", samples: twenty, failed: 1,
			want: Summary{N: 20, Failed: 1, Min: ms(1)[0], P50: ms(10)[0], P95: ms(19)[0], Max: ms(20)[0], Mean: 10500 * time.Microsecond},
		},
		{name: "outlier", samples: ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 100), want: Summary{N: 10, Min: ms(1)[0], P50: ms(1)[0], P95: ms(100)[0], Max: ms(100)[0], Mean: 10900 * time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]time.Duration(nil), tt.samples...)
			got := Summarize(tt.samples, tt.failed)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, before, tt.samples, "Summarize must not reorder its input")
		})
	}
}

func TestPercentile(t *testing.T) {
	sorted := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{p: 0, want: ms(1)[0]},
		{p: 1, want: ms(1)[0]},
		{p: 10, want: ms(1)[0]},
		{p: 11, want: ms(2)[0]},
		{p: 50, want: ms(5)[0]},
		{p: 95, want: ms(10)[0]},
		{p: 100, want: ms(10)[0]},
		{p: 150, want: ms(10)[0]},
	}
	for _, tt := range tests {
		t.Run(FormatValue(tt.p, "%"), func(t *testing.T) {
			assert.Equal(t, tt.want, Percentile(sorted, tt.p))
		})
	}
	assert.Zero(t, Percentile(nil, 50))
}

func TestRatio(t *testing.T) {
	assert.InDelta(t, 2.5, Ratio(5*time.Second, 2*time.Second), 1e-9)
	assert.Zero(t, Ratio(time.Second, 0))
}

func TestScaleBudget(t *testing.T) {
	tests := []struct {
		name     string
		requests int
		wall     time.Duration
		scale    float64
		perHour  float64
		servers  int
	}{
		// 60 s of wall time at 60x is one simulated hour.
		{name: "one hour at 60x", requests: 6, wall: time.Minute, scale: 60, perHour: 6, servers: 600},
		{name: "two hours at 60x", requests: 6, wall: 2 * time.Minute, scale: 60, perHour: 3, servers: 1200},
		{name: "unscaled", requests: 10, wall: 30 * time.Minute, scale: 1, perHour: 20, servers: 180},
		{name: "no requests", requests: 0, wall: time.Minute, scale: 60, perHour: 0, servers: 0},
		{name: "over budget", requests: 7200, wall: time.Hour, scale: 1, perHour: 7200, servers: 0},
		{name: "zero wall", requests: 5, wall: 0, scale: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScaleBudget(tt.requests, tt.wall, tt.scale)
			assert.InDelta(t, tt.perHour, got.PerHour, 1e-9)
			assert.Equal(t, tt.servers, got.Servers)
		})
	}
}
