package keepalived

import "strings"

// Transition is a VRRP state change that keepalived logged.
type Transition struct {
	Instance string // vrrp_instance name
	State    string // MASTER, BACKUP or FAULT
}

// ParseLogLine extracts a state transition from one line of keepalived's
// console log, e.g. "Sat Nov 28 04:15:52 2026: (hc) Entering MASTER STATE".
// ok is false for every other line.
func ParseLogLine(line string) (t Transition, ok bool) {
	const enter, state = ") Entering ", " STATE"
	i := strings.Index(line, enter)
	if i < 0 {
		return Transition{}, false
	}
	open := strings.LastIndexByte(line[:i], '(')
	if open < 0 {
		return Transition{}, false
	}
	rest := line[i+len(enter):]
	j := strings.Index(rest, state)
	if j <= 0 {
		return Transition{}, false
	}
	t = Transition{Instance: line[open+1 : i], State: rest[:j]}
	if t.Instance == "" || strings.ContainsAny(t.State, " ()") || strings.ContainsAny(t.Instance, "()") {
		return Transition{}, false
	}
	return t, true
}

// String renders t as keepalived logs it, without the timestamp prefix.
func (t Transition) String() string {
	return "(" + t.Instance + ") Entering " + t.State + " STATE"
}
