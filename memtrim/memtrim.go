// Package memtrim gives the kernel back the memory that only the start-up
// of the process needed, once the daemon has settled (issue 14).
//
// Two kinds of memory outlive hc-agent's start-up without being used
// again:
//
//   - the Go heap's free pages: start-up garbage (the configuration, the
//     first metadata and API reads, package initialisation) that the
//     background scavenger returns only slowly;
//   - the executable's pages that start-up code touched: package
//     initialisation, configuration parsing, the first reconcile and the
//     first API read run once, but the pages they faulted in stay mapped,
//     and the kernel maps up to 64 KiB around every fault
//     (fault_around_bytes). They are clean file pages, shared with the
//     page cache, yet they count in the process's RSS and are reclaimed
//     only after they are unmapped.
//
// Trim releases both: the heap through debug.FreeOSMemory, the
// executable's read-only segments with madvise(MADV_DONTNEED), which drops
// the mappings of their pages and keeps the page cache. Whatever the
// daemon runs afterwards faults back in from the page cache (a minor
// fault, no I/O); only the idle daemon's working set is mapped again.
// Writable segments are left alone: their written pages are the
// process's own data.
package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// segment is one mapping of /proc/PID/maps.
type segment struct {
	Start, End uint64 // [Start, End)
	Perms      string // e.g. "r-xp"
	Path       string // "" for anonymous mappings
}

// writable reports whether the segment may be written.
func (s segment) writable() bool { return strings.Contains(s.Perms, "w") }

// size is the segment's length in bytes.
func (s segment) size() uint64 { return s.End - s.Start }

// parseMaps reads the lines of /proc/PID/maps:
//
//	00400000-00c86000 r-xp 00000000 fe:00 10027084   /usr/bin/hc-agent
//
// It returns an error naming the line for a line it cannot read, so that
// a caller never acts on a range it misread.
func parseMaps(r io.Reader) ([]segment, error) {
	var segs []segment
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s, err := parseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", n, err)
		}
		segs = append(segs, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	return segs, nil
}

func parseLine(line string) (segment, error) {
	// Address, perms, offset, device, inode, then the path, which may
	// contain blanks (and " (deleted)" after it).
	f := strings.Fields(line)
	if len(f) < 5 {
		return segment{}, fmt.Errorf("%q: want at least 5 fields", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return segment{}, fmt.Errorf("%q: address range without '-'", f[0])
	}
	start, err := strconv.ParseUint(lo, 16, 64)
	if err != nil {
		return segment{}, fmt.Errorf("%q: start address: %w", f[0], err)
	}
	end, err := strconv.ParseUint(hi, 16, 64)
	if err != nil {
		return segment{}, fmt.Errorf("%q: end address: %w", f[0], err)
	}
	if end <= start {
		return segment{}, fmt.Errorf("%q: end not after start", f[0])
	}
	if len(f[1]) != 4 {
		return segment{}, fmt.Errorf("%q: permissions must be 4 characters", f[1])
	}
	s := segment{Start: start, End: end, Perms: f[1]}
	if len(f) > 5 {
		// The path starts at the sixth field and runs to the end of the line.
		s.Path = strings.TrimSpace(line[fieldOffset(line, 5):])
	}
	return s, nil
}

// fieldOffset returns the byte offset of field i (0-based) of line, fields
// being separated by blanks as strings.Fields does for ASCII.
func fieldOffset(line string, i int) int {
	in := false
	for j := 0; j < len(line); j++ {
		blank := line[j] == ' ' || line[j] == '\t'
		if !blank && !in {
			if i == 0 {
				return j
			}
			i--
		}
		in = !blank
	}
	return len(line)
}

// executableSegments returns the read-only segments of the executable at
// path: its code and its read-only data (pclntab, type data, strings).
func executableSegments(segs []segment, path string) []segment {
	var out []segment
	for _, s := range segs {
		if s.Path == path && !s.writable() {
			out = append(out, s)
		}
	}
	return out
}

// Result is what Trim did.
type Result struct {
	Segments int    // executable segments whose pages were unmapped
	Bytes    uint64 // their length (mapped or not)
}
