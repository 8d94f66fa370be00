// Package hwid tells from the hardware whether a state directory belongs to
// this server. On Hetzner Cloud the SMBIOS system serial
// (/sys/class/dmi/id/product_serial) equals the server's instance ID, as
// cloud-init uses it to detect clones. The serial is there at boot, before
// the metadata service answers (which may be minutes when a DHCP route
// black-holes it), so state baked into a snapshot of another server is
// discarded before anything acts on it. The metadata's instance-id stays
// the authority on who this server is: a serial that disagrees with it is
// reported once and then ignored.
package hwid

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ReadSerial reads the SMBIOS serial at path and returns it as an instance
// ID. ok is false, without an error, when there is no usable serial: the
// file is missing or unreadable for lack of permission (not every platform
// has DMI, and product_serial is root-only), empty, or not a positive
// integer (other clouds and hardware put other things there).
func ReadSerial(path string) (id int64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read smbios serial %s: %w", path, err)
	}
	id, ok = ParseSerial(b)
	return id, ok, nil
}

// ParseSerial parses the content of product_serial: a positive decimal
// integer with surrounding whitespace. Anything else is not an instance ID
// (ok false).
func ParseSerial(b []byte) (id int64, ok bool) {
	s := strings.TrimSpace(string(b))
	if s == "" || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// Verdict is what to do with a state directory.
type Verdict int

const (
	// NoRecord: the directory holds no state record; nothing to judge.
	NoRecord Verdict = iota
	// Unknown: neither the serial nor the metadata says who this server
	// is yet; keep the state and judge again when metadata answers.
	Unknown
	// Same: the state belongs to this server.
	Same
	// Clone: the state belongs to another server (this one was booted
	// from its snapshot): discard it.
	Clone
)

func (v Verdict) String() string {
	switch v {
	case NoRecord:
		return "no-record"
	case Unknown:
		return "unknown"
	case Same:
		return "same"
	case Clone:
		return "clone"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Facts are what Judge decides from; a zero ID means not known.
type Facts struct {
	Recorded int64 // instance ID in the state record
	Serial   int64 // from the SMBIOS serial
	Metadata int64 // the metadata's instance-id
}

// Self is this server's instance ID by the facts: the metadata's when
// known, otherwise the serial's; 0 when neither is known.
func (f Facts) Self() int64 {
	if f.Metadata != 0 {
		return f.Metadata
	}
	return f.Serial
}

// Disagree reports whether the serial and the metadata both say something
// and differ.
func (f Facts) Disagree() bool {
	return f.Serial != 0 && f.Metadata != 0 && f.Serial != f.Metadata
}

// Judge decides what to do with the state of f.Recorded.
func Judge(f Facts) Verdict {
	switch self := f.Self(); {
	case f.Recorded == 0:
		return NoRecord
	case self == 0:
		return Unknown
	case self == f.Recorded:
		return Same
	default:
		return Clone
	}
}

// Reporter logs a disagreement between the serial and the metadata once per
// pair of values, so that a repeating metadata read does not repeat it.
type Reporter struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen [2]int64
}

// NewReporter returns a Reporter that logs to log.
func NewReporter(log *slog.Logger) *Reporter { return &Reporter{log: log} }

// Check logs a warning the first time f's serial and metadata disagree
// (for each pair of values) and reports whether they disagree.
func (r *Reporter) Check(f Facts) bool {
	if !f.Disagree() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pair := [2]int64{f.Serial, f.Metadata}; pair != r.seen {
		r.seen = pair
		r.log.Warn("smbios serial and metadata instance-id disagree; using the metadata's",
			"smbios_serial", f.Serial, "instance_id", f.Metadata)
	}
	return true
}
