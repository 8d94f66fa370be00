// Package logging builds hc-agent's structured logger and helps log a
// repeating error once until it changes.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Log formats accepted by New and ParseFormat.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ParseLevel parses debug, info, warn or error (case-insensitive, so that
// slog.Level.String output parses too; "" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("parse log level %q: want debug, info, warn or error", s)
}

// ParseFormat parses text or json (case-insensitive; "" is text) and
// returns FormatText or FormatJSON.
func ParseFormat(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", FormatText:
		return FormatText, nil
	case FormatJSON:
		return FormatJSON, nil
	}
	return "", fmt.Errorf("parse log format %q: want text or json", s)
}

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error"; "" is info) in format ("text" or "json"; "" is text). It is the
// one way hc-agent builds its logger: the daemon and every command use it.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	f, err := ParseFormat(format)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if f == FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// Dedup logs a repeating error once per key until it changes: the first
// error of a key is logged at warn level, the same error text again is
// dropped, a different one is logged again, and the first success after an
// error logs a recovery at info level. It is safe for concurrent use.
type Dedup struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]string // key -> last error text logged
}

// NewDedup returns a Dedup that writes to log.
func NewDedup(log *slog.Logger) *Dedup {
	return &Dedup{log: log, last: make(map[string]string)}
}

// Error records the outcome of an operation identified by key (for example
// a component name). msg is the constant log message used for errors; attrs
// are added to the record. It reports whether something was logged.
func (d *Dedup) Error(key, msg string, err error, attrs ...any) bool {
	d.mu.Lock()
	prev, had := d.last[key]
	if err == nil {
		delete(d.last, key)
	} else {
		d.last[key] = err.Error()
	}
	d.mu.Unlock()
	switch {
	case err == nil && had:
		d.log.Info("recovered", append([]any{"key", key, "previous_error", prev}, attrs...)...)
		return true
	case err == nil:
		return false
	case had && prev == err.Error():
		return false
	}
	d.log.Warn(msg, append([]any{"key", key, "err", err.Error()}, attrs...)...)
	return true
}
