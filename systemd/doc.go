// Package systemd holds hc-agent's systemd unit (hc-agent.service) and the
// tests that lint it. The notify protocol itself is spoken by package agent.
package systemd
