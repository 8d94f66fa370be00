package logging

import (
	"bytes"
	"errors"
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
}
