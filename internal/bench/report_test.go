package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleReport() *Report {
	return &Report{
		Started: time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC),
		Trials:  20,
		Host:    Host{Kernel: "6.1.0", CPUs: 2, GoVersion: "go1.26.8"},
		Sections: []Section{
			{
				ID: "failover", Title: "Failover outage", Method: "probe from the client namespace",
				Rows: []Row{
					DurationRow(SubjectAgent, "action delay 1s", Summarize(ms(1200, 1100, 1300), 0)),
					DurationRow(SubjectKeepalived, "action delay 1s", Summarize(nil, 20)),
					ValueRow(SubjectRatio, "p50 keepalived / hc-agent", 3.5, "×"),
				},
				Notes: []string{"scaled"},
			},
			Unavailable("hotplug", "Hotplug", "metadata change", "simcloud has no attach yet"),
		},
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	require.NoError(t, sampleReport().WriteTable(&b))
	got := b.String()
	for _, want := range []string{
		"hc-agent benchmark, 2026-11-28T04:00:00Z, 20 trials, kernel 6.1.0, 2 CPUs, go1.26.8",
		"1. Failover outage",
		"   method: probe from the client namespace",
		"hc-agent    action delay 1s            3  0       1.2s  1.3s  1.3s",
		"keepalived  action delay 1s            0  20      -     -     -",
		"3.50×",
		"   note: scaled",
		"2. Hotplug",
		"   not available: simcloud has no attach yet",
	} {
		assert.Contains(t, got, want)
	}
	if t.Failed() {
		t.Logf("table:\n%s", got)
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "results.json")
	want := sampleReport()
	require.NoError(t, want.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var got Report
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, want, &got)
	_, err = os.Stat(path + ".tmp")
	assert.ErrorIs(t, err, os.ErrNotExist, "temporary file left behind")
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{v: 0, unit: "req/h", want: "0 req/h"},
		{v: 1200, unit: "servers", want: "1200 servers"},
		{v: 1234.56, unit: "", want: "1235"},
		{v: 3.456, unit: "×", want: "3.46×"},
		{v: 0.01234, unit: "%", want: "0.0123%"},
		{v: 12.5, unit: "MiB", want: "12.50 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatValue(tt.v, tt.unit))
		})
	}
}

func TestFormatDuration(t *testing.T) {
	assert.Equal(t, "1.235s", FormatDuration(1234567*time.Microsecond))
	assert.Equal(t, "123µs", FormatDuration(123456*time.Nanosecond))
	assert.Equal(t, "0s", FormatDuration(0))
}
