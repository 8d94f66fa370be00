package statedir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// StateFile is the name of the file in the state directory that records
// which server the state belongs to.
const StateFile = "state.json"

// FloatingIPOwnedFile is the floating IP ownership record inside the state
// directory.
const FloatingIPOwnedFile = "floatingip-owned.json"

// NetconfOwnedFile is netconf's ownership record (netconf.OwnedFileName;
// a test keeps the two equal, since netconf writes through this package).
const NetconfOwnedFile = "netconf-owned.json"

// stateFiles are the files hc-agent keeps in the state directory. Only
// these, and their temporary siblings (the name, a dot and a suffix) that an
// interrupted write leaves, are ever listed or removed: state_dir may name a
// directory that also holds other files, and those are never touched.
var stateFiles = []string{StateFile, NetconfOwnedFile, FloatingIPOwnedFile}

// isStateEntry reports whether name, an entry of the state directory, is
// one of hc-agent's files.
func isStateEntry(name string) bool {
	for _, f := range stateFiles {
		if name == f || strings.HasPrefix(name, f+".") {
			return true
		}
	}
	return false
}

// State is the content of StateFile. hc-agent's other files in the state
// directory (the ownership records of netconf and of the floating IPs)
// belong to InstanceID: when the server's instance ID differs, the server
// was booted from a snapshot of another server and they are discarded.
type State struct {
	InstanceID int64     `json:"instance_id"`
	CreatedAt  time.Time `json:"created_at"`
	Version    string    `json:"version,omitempty"`
}

// LoadState reads StateFile from dir. A missing file returns ok false and no
// error.
func LoadState(dir string) (st State, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("read state %s: %w", filepath.Join(dir, StateFile), err)
	}
	st, err = ParseState(b)
	if err != nil {
		return State{}, false, fmt.Errorf("load %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, true, nil
}

// ParseState decodes a state record. Unknown keys are errors: a record this
// version does not understand cannot prove whose state it is.
func ParseState(b []byte) (State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("parse state record: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("parse state record: trailing data")
	}
	return st, nil
}

// Marshal encodes st as indented JSON, as SaveState writes it.
func (st State) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state record: %w", err)
	}
	return append(b, '\n'), nil
}

// SaveState writes st to StateFile in dir with WriteFile, creating
// dir with mode 0700 when it is missing.
func SaveState(dir string, st State) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	b, err := st.Marshal()
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, StateFile), b); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// StateEntries lists hc-agent's files in dir (see stateFiles), sorted:
// what ClearState removes. A missing dir has none.
func StateEntries(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list state dir %s: %w", dir, err)
	}
	paths := make([]string, 0, len(ents))
	for _, e := range ents {
		if isStateEntry(e.Name()) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// ClearState removes hc-agent's files from dir (see StateEntries) and keeps
// dir itself (systemd owns it through StateDirectory=) and anything else in
// it. It returns the removed paths, also when
// it fails part-way, and keeps going past a failure.
func ClearState(dir string) ([]string, error) {
	paths, err := StateEntries(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove state %s: %w", p, err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// PrepareImage cleans the state directory before a snapshot is taken, so
// that servers created from the image start from nothing. With dryRun it
// only lists what it would remove. It returns the paths removed (or to be
// removed).
func PrepareImage(dir string, dryRun bool) ([]string, error) {
	if dryRun {
		return StateEntries(dir)
	}
	return ClearState(dir)
}

// Claim makes the state directory belong to st.InstanceID before anything
// reads it: state written on another server (this one was booted from its
// snapshot image), or state without a readable record, is discarded and
// the instance record is written. Every command that writes state (run,
// apply) claims the directory first, so that what one of them records
// stays the other's (issue 13 item 2). It logs what it discards.
func Claim(dir string, st State, log *slog.Logger) error {
	old, ok, err := LoadState(dir)
	if err != nil {
		// An unreadable record cannot prove the state is ours.
		log.Warn("state record unreadable, discarding state", "dir", dir, "err", err)
		ok, old.InstanceID = true, 0
	}
	if !ok {
		// No record: anything in the directory has no owner we can check.
		if ents, _ := StateEntries(dir); len(ents) > 0 {
			ok = true
		}
	}
	if ok && old.InstanceID != st.InstanceID {
		removed, err := ClearState(dir)
		log.Warn("state from another server discarded",
			"dir", dir, "state_instance_id", old.InstanceID, "instance_id", st.InstanceID, "removed", removed)
		if err != nil {
			return err
		}
		ok = false
	}
	if ok {
		return nil
	}
	return SaveState(dir, st)
}
