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

// Result is what Trim did.
type Result struct {
	Segments int    // executable segments whose pages were unmapped
	Bytes    uint64 // their length (mapped or not)
}
