package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes the outcome of repeated trials of one measurement.
// Percentiles use the nearest-rank method on the successful samples, so every
// reported value is one that was actually observed.
type Summary struct {
	N      int           `json:"n"`      // successful samples
	Failed int           `json:"failed"` // trials that produced no sample
	Min    time.Duration `json:"min_ns"`
	P50    time.Duration `json:"p50_ns"`
	P95    time.Duration `json:"p95_ns"`
	Max    time.Duration `json:"max_ns"`
	Mean   time.Duration `json:"mean_ns"`
}

// Summarize computes the summary of samples; failed counts the trials that
// produced no sample. It does not modify samples.
func Summarize(samples []time.Duration, failed int) Summary {
	s := Summary{N: len(samples), Failed: failed}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.Min = sorted[0]
	s.Max = sorted[len(sorted)-1]
	s.P50 = Percentile(sorted, 50)
	s.P95 = Percentile(sorted, 95)
	s.Mean = sum / time.Duration(len(sorted))
	return s
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p percent of
// the samples are less than or equal to it. It returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Ratio returns a/b, or 0 when b is zero, for "the baseline takes N times as
// long" figures.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
