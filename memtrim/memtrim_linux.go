package memtrim

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
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
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return Result{}, fmt.Errorf("read mappings: %w", err)
	}
	segs, err := parseMaps(f)
	f.Close()
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, s := range executableSegments(segs, exe) {
		// madvise on an address range, not a Go slice: the segments are
		// the executable's own mappings, which Go never frees or moves.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(s.Start), uintptr(s.size()), syscall.MADV_DONTNEED); errno != 0 {
			return res, fmt.Errorf("unmap executable pages %x-%x: %w", s.Start, s.End, errno)
		}
		res.Segments++
		res.Bytes += s.size()
	}
	return res, nil
}
