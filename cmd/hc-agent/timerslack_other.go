//go:build !linux

package main

import "time"

const timerSlack = time.Millisecond

// setTimerSlack does nothing outside Linux.
func setTimerSlack(string, time.Duration) int { return 0 }
