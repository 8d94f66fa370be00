package hwid

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var serialTests = []struct {
	name   string
	in     string
	want   int64
	wantOK bool
}{
	{"hetzner serial with newline", "12345678\n", 12345678, true},
	{"surrounding whitespace", "  4711 \t\n", 4711, true},
	{"empty", "", 0, false},
	{"only newline", "\n", 0, false},
	{"zero", "0\n", 0, false},
	{"negative", "-5\n", 0, false},
	{"plus sign", "+5\n", 0, false},
	{"vendor text", "To be filled by O.E.M.\n", 0, false},
	{"uuid-like", "VMware-56 4d 1a\n", 0, false},
	{"overflow", "99999999999999999999\n", 0, false},
}

func TestParseSerial(t *testing.T) {
	for _, tt := range serialTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseSerial([]byte(tt.in))
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseSerial(f *testing.F) {
	for _, tt := range serialTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := ParseSerial(b)
		if !ok {
			if id != 0 {
				t.Fatalf("ParseSerial(%q) = %d, not ok", b, id)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("ParseSerial(%q) = %d", b, id)
		}
		// print -> parse is stable.
		again, ok := ParseSerial([]byte(strconv.FormatInt(id, 10) + "\n"))
		if !ok || again != id {
			t.Fatalf("round trip of %d: %d %v", id, again, ok)
		}
	})
}

func TestReadSerial(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "product_serial")
	require.NoError(t, os.WriteFile(path, []byte("4242\n"), 0o400))
	id, ok, err := ReadSerial(path)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(4242), id)

	_, ok, err = ReadSerial(filepath.Join(dir, "missing"))
	require.NoError(t, err, "a platform without DMI is not an error")
	assert.False(t, ok)

	_, _, err = ReadSerial(dir) // a directory: a real read error
	assert.ErrorContains(t, err, "read smbios serial")
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		f    Facts
		want Verdict
	}{
		{"no record", Facts{Serial: 1, Metadata: 1}, NoRecord},
		{"nothing known yet", Facts{Recorded: 7}, Unknown},
		{"serial matches before metadata", Facts{Recorded: 7, Serial: 7}, Same},
		{"serial says clone before metadata", Facts{Recorded: 7, Serial: 8}, Clone},
		{"metadata matches", Facts{Recorded: 7, Metadata: 7}, Same},
		{"metadata says clone", Facts{Recorded: 7, Metadata: 9}, Clone},
		{"metadata wins over a disagreeing serial", Facts{Recorded: 7, Serial: 8, Metadata: 7}, Same},
		{"metadata clone despite matching serial", Facts{Recorded: 7, Serial: 7, Metadata: 9}, Clone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Judge(tt.f), "got %v", Judge(tt.f))
		})
	}
}

func TestReporterLogsOnce(t *testing.T) {
	var buf bytes.Buffer
	r := NewReporter(slog.New(slog.NewTextHandler(&buf, nil)))
	steps := []struct {
		f        Facts
		want     bool
		wantLogs int
	}{
		{Facts{Serial: 8}, false, 0},
		{Facts{Serial: 8, Metadata: 8}, false, 0},
		{Facts{Serial: 8, Metadata: 7}, true, 1},
		{Facts{Serial: 8, Metadata: 7}, true, 1}, // the next metadata read
		{Facts{Serial: 8, Metadata: 7, Recorded: 7}, true, 1},
		{Facts{Serial: 8, Metadata: 9}, true, 2}, // a change is news
	}
	for i, st := range steps {
		assert.Equal(t, st.want, r.Check(st.f), "step %d", i)
		assert.Equal(t, st.wantLogs, strings.Count(buf.String(), "disagree"), "step %d: %s", i, buf.String())
	}
	assert.Contains(t, buf.String(), "smbios_serial=8 instance_id=7")
}
