package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	tests := []struct {
		level, format string
		wantErr       string
		wantLine      string // substring of the logged info line; "" when filtered
	}{
		{"", "", "", `level=INFO msg=hello n=1`},
		{"debug", "json", "", `"level":"INFO","msg":"hello","n":1`},
		{"WARN", "text", "", ""},
		{"error", "json", "", ""},
		{"verbose", "text", `parse log level "verbose"`, ""},
		{"info", "xml", `parse log format "xml"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, tt.level, tt.format)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			log.Info("hello", "n", 1)
			if tt.wantLine == "" {
				assert.Empty(t, buf.String())
				return
			}
			assert.Contains(t, buf.String(), tt.wantLine)
		})
	}
}

// parseTest is one case of a parser test: the input and either the value
// or an error.
type parseTest[T any] struct {
	in      string
	want    T
	wantErr bool
}

// testParse runs a parser over its table; errors must say what is accepted.
func testParse[T any](t *testing.T, parse func(string) (T, error), tests []parseTest[T], errWant string) {
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parse(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), errWant)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

var levelTests = []parseTest[slog.Level]{
	{"", slog.LevelInfo, false},
	{"debug", slog.LevelDebug, false},
	{"info", slog.LevelInfo, false},
	{"warn", slog.LevelWarn, false},
	{"warning", slog.LevelWarn, false},
	{"ERROR", slog.LevelError, false},
	{"verbose", 0, true},
	{" info", 0, true},
	{"DEBUG-4", 0, true},
}

func TestParseLevel(t *testing.T) {
	testParse(t, ParseLevel, levelTests, "want debug, info, warn or error")
}

var formatTests = []parseTest[string]{
	{"", FormatText, false},
	{"text", FormatText, false},
	{"JSON", FormatJSON, false},
	{"logfmt", "", true},
	{"json ", "", true},
}

func TestParseFormat(t *testing.T) {
	testParse(t, ParseFormat, formatTests, "want text or json")
}

// FuzzParseLevel checks that a parsed level prints (slog.Level.String) to
// something that parses to the same level.
func FuzzParseLevel(f *testing.F) {
	for _, tt := range levelTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lvl, err := ParseLevel(s)
		if err != nil {
			return
		}
		again, err := ParseLevel(lvl.String())
		require.NoError(t, err, "level %q printed as %q", s, lvl.String())
		assert.Equal(t, lvl, again)
	})
}

// FuzzParseFormat checks that a parsed format parses to itself.
func FuzzParseFormat(f *testing.F) {
	for _, tt := range formatTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFormat(s)
		if err != nil {
			return
		}
		again, err := ParseFormat(got)
		require.NoError(t, err)
		assert.Equal(t, got, again)
	})
}

func TestDedup(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	steps := []struct {
		key    string
		err    error
		logged bool
	}{
		{"netconf", errA, true},
		{"netconf", errA, false},
		{"netconf", errors.New("a failed"), false}, // same text, new value
		{"api", errA, true},                        // keys are independent
		{"netconf", errB, true},
		{"netconf", nil, true}, // recovery
		{"netconf", nil, false},
		{"netconf", errB, true},
	}
	var buf bytes.Buffer
	log, err := New(&buf, "debug", "text")
	require.NoError(t, err)
	d := NewDedup(log)
	for i, s := range steps {
		before := buf.Len()
		got := d.Error(s.key, "reconcile failed", s.err)
		assert.Equal(t, s.logged, got, "step %d", i)
		assert.Equal(t, s.logged, buf.Len() > before, "step %d wrote output", i)
	}
	out := buf.String()
	assert.Equal(t, 5, strings.Count(out, "\n"), out)
	assert.Contains(t, out, `level=INFO msg=recovered key=netconf previous_error="b failed"`)
	// One attribute key for errors everywhere: err.
	assert.Contains(t, out, `level=WARN msg="reconcile failed" key=netconf err="a failed"`)
}
