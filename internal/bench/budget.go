package bench

import "time"

// ProjectBudgetPerHour is the Hetzner Cloud API limit shared by every server
// and tool of one project.
const ProjectBudgetPerHour = 3600

// Budget is the steady-state API use of one server, measured with poll
// intervals divided by Scale so that a simulated hour passes in an hour/Scale
// of wall time.
type Budget struct {
	Requests int           `json:"requests"` // counted by the simulator for one server
	Wall     time.Duration `json:"wall_ns"`  // wall time of the counting window
	Scale    float64       `json:"scale"`    // poll intervals were divided by this
	PerHour  float64       `json:"per_hour"` // requests per real hour
	Servers  int           `json:"servers"`  // servers one project's budget supports, 0 = unbounded
}

// ScaleBudget turns requests counted over wall with poll intervals divided by
// scale into requests per real hour, and into the number of servers whose
// steady state fits into the project's hourly budget. A zero count yields
// PerHour 0 and Servers 0, which means "not bounded by polling".
func ScaleBudget(requests int, wall time.Duration, scale float64) Budget {
	b := Budget{Requests: requests, Wall: wall, Scale: scale}
	if wall <= 0 || scale <= 0 {
		return b
	}
	simulated := wall.Hours() * scale
	b.PerHour = float64(requests) / simulated
	if b.PerHour > 0 {
		b.Servers = int(ProjectBudgetPerHour / b.PerHour)
	}
	return b
}
