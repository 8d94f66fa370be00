package memtrim

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	"github.com/prometheus/procfs"
)

// Trim returns the heap's free pages to the kernel and unmaps the pages of
// the running executable's read-only segments (see the package comment).
// The process goes on normally: code and data it uses fault back in from
// the page cache.
func Trim() (Result, error) {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, fmt.Errorf("find executable: %w", err)
	}
	maps, err := selfMaps()
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, m := range executableSegments(maps, exe) {
		// madvise on an address range, not a Go slice: the segments are
		// the executable's own mappings, which Go never frees or moves.
		size := m.EndAddr - m.StartAddr
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.StartAddr, size, syscall.MADV_DONTNEED); errno != 0 {
			return res, fmt.Errorf("unmap executable pages %x-%x: %w", m.StartAddr, m.EndAddr, errno)
		}
		res.Segments++
		res.Bytes += uint64(size)
	}
	return res, nil
}

// selfMaps reads /proc/self/maps.
func selfMaps() ([]*procfs.ProcMap, error) {
	p, err := procfs.Self()
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	maps, err := p.ProcMaps()
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	return maps, nil
}

// executableSegments returns the read-only mappings of the executable at
// path: its code and its read-only data (pclntab, type data, strings).
func executableSegments(maps []*procfs.ProcMap, path string) []*procfs.ProcMap {
	var out []*procfs.ProcMap
	for _, m := range maps {
		if m.Pathname == path && !m.Perms.Write {
			out = append(out, m)
		}
	}
	return out
}
