//go:build !race

package floatingip

const raceEnabled = false
