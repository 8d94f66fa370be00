package memtrim

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecutableSegments(t *testing.T) {
	rx := &procfs.ProcMapPermissions{Read: true, Execute: true, Private: true}
	r := &procfs.ProcMapPermissions{Read: true, Private: true}
	rw := &procfs.ProcMapPermissions{Read: true, Write: true, Private: true}
	maps := []*procfs.ProcMap{
		{StartAddr: 0x1000, EndAddr: 0x2000, Perms: rx, Pathname: "/usr/bin/hc-agent"},
		{StartAddr: 0x2000, EndAddr: 0x3000, Perms: r, Pathname: "/usr/bin/hc-agent"},
		{StartAddr: 0x3000, EndAddr: 0x4000, Perms: rw, Pathname: "/usr/bin/hc-agent"},
		{StartAddr: 0x4000, EndAddr: 0x5000, Perms: rx, Pathname: "/usr/lib/other.so"},
		{StartAddr: 0x5000, EndAddr: 0x6000, Perms: r},
		{StartAddr: 0x6000, EndAddr: 0x7000, Perms: rx, Pathname: "/usr/bin/hc-agent (deleted)"},
	}
	tests := []struct {
		path string
		want []*procfs.ProcMap
	}{
		{"/usr/bin/hc-agent", maps[:2]},
		{"/usr/lib/other.so", maps[3:4]},
		{"/usr/bin/hc-agent (deleted)", maps[5:6]}, // replaced by an upgrade: /proc/self/exe says so too
		{"/nowhere", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			assert.Equal(t, tt.want, executableSegments(maps, tt.path))
		})
	}
}

// executableResident counts the resident pages of the read-only segments
// of this test binary, from the present bits of /proc/self/pagemap (which
// an unprivileged process may read for itself).
func executableResident(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	maps, err := selfMaps()
	require.NoError(t, err)
	pm, err := os.Open("/proc/self/pagemap")
	require.NoError(t, err)
	defer pm.Close()
	page := uintptr(os.Getpagesize())
	n := 0
	for _, m := range executableSegments(maps, exe) {
		entries := make([]byte, (m.EndAddr-m.StartAddr)/page*8)
		_, err := pm.ReadAt(entries, int64(m.StartAddr/page*8))
		require.NoError(t, err)
		for i := 0; i < len(entries); i += 8 {
			if binary.LittleEndian.Uint64(entries[i:])&(1<<63) != 0 {
				n++
			}
		}
	}
	return n
}

// TestTrimUnmapsExecutablePages runs Trim on the test binary itself: the
// pages its start-up touched (runtime, testing, this package) are mapped
// before and mostly gone after, and the process goes on running the code
// it needs.
func TestTrimUnmapsExecutablePages(t *testing.T) {
	before := executableResident(t)
	require.Positive(t, before, "the test binary has mapped pages of its own code")
	res, err := Trim()
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Segments, 2, "code and read-only data")
	require.Positive(t, res.Bytes)
	after := executableResident(t)
	t.Logf("executable pages resident: %d before, %d after (%d kB in %d segments)", before, after, res.Bytes>>10, res.Segments)
	require.Less(t, after, before, "Trim unmaps the pages start-up touched")

	// A second Trim works the same: nothing was broken by the first.
	_, err = Trim()
	require.NoError(t, err)
}
