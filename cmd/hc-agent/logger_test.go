package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
)

// TestLogger checks the one way the CLI builds its logger: log.level and
// log.format of the config, overridden by --log-level and --log-format
// (before or after COMMAND), with the defaults (info, text) kept for a bad
// config value and a warning about it.
func TestLogger(t *testing.T) {
	tests := []struct {
		name          string
		cfg           config.Log
		args          []string // global flags, parsed as on the command line
		wantJSON      bool
		wantDebug     bool // a debug line passes
		wantInfo      bool // an info line passes
		wantWarnAbout string
	}{
		{name: "defaults", wantInfo: true},
		{name: "config", cfg: config.Log{Level: "debug", Format: "json"}, wantJSON: true, wantDebug: true, wantInfo: true},
		{name: "flags win over config", cfg: config.Log{Level: "debug", Format: "json"}, args: []string{"--log-level", "warn", "--log-format", "text"}},
		{name: "flag level only", cfg: config.Log{Format: "json"}, args: []string{"--log-level=debug"}, wantJSON: true, wantDebug: true, wantInfo: true},
		{name: "flags are case-insensitive", args: []string{"--log-level", "DEBUG", "--log-format", "JSON"}, wantJSON: true, wantDebug: true, wantInfo: true},
		{name: "bad config level keeps info", cfg: config.Log{Level: "loud", Format: "json"}, wantJSON: true, wantInfo: true, wantWarnAbout: "loud"},
		{name: "bad config format keeps text", cfg: config.Log{Level: "debug", Format: "xml"}, wantDebug: true, wantInfo: true, wantWarnAbout: "xml"},
		{name: "flag mends a bad config", cfg: config.Log{Level: "loud"}, args: []string{"--log-level", "error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := newEnv(&bytes.Buffer{}, &stderr, func(string) string { return "" })
			fs := env.flagSet()
			require.NoError(t, env.parse(fs, tt.args))
			log := env.logger(config.Config{Log: tt.cfg})

			warning := stderr.String()
			if tt.wantWarnAbout == "" {
				assert.Empty(t, warning)
			} else {
				assert.Contains(t, warning, "invalid log settings in the config")
				assert.Contains(t, warning, tt.wantWarnAbout)
			}
			stderr.Reset()
			log.Debug("debug line")
			log.Info("info line")
			log.Error("error line")
			out := stderr.String()
			assert.Equal(t, tt.wantDebug, strings.Contains(out, "debug line"), out)
			assert.Equal(t, tt.wantInfo, strings.Contains(out, "info line"), out)
			require.Contains(t, out, "error line")
			for l := range strings.Lines(out) {
				var m map[string]any
				isJSON := json.Unmarshal([]byte(l), &m) == nil
				assert.Equal(t, tt.wantJSON, isJSON, "line %q", l)
			}
		})
	}
}
