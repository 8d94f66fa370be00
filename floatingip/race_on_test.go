//go:build race

package floatingip

// raceEnabled relaxes wall-clock bounds: the race detector slows memberlist
// several times over.
const raceEnabled = true
