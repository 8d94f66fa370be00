//go:build !linux

package memtrim

import "runtime/debug"

// Trim returns the heap's free pages to the kernel; the executable's pages
// stay mapped (this needs Linux's /proc/self/maps).
func Trim() (Result, error) {
	debug.FreeOSMemory()
	return Result{}, nil
}
