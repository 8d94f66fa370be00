// Package bench holds the measurement side of hc-agent's benchmark harness:
// statistics over trials, the report (a table for people and JSON for
// tools) and the arithmetic that turns a scaled-clock request count into an
// hourly API budget. The scenarios that produce the numbers live in
// subpackages and in cmd/hc-bench, which `make bench` runs.
package bench
