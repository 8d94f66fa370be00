// Package scenario runs the benchmark scenarios of hc-bench on the simulated
// cloud (package simcloud with the API simulator cloudapitest): failover and
// hand-over outages of hc-agent and of the keepalived baseline as a client
// sees them, boot and hotplug times, steady-state API use and the idle
// footprint.
//
// Every scenario builds its own simulated cloud and tears it down; the
// processes it starts run inside server namespaces and are ended by PID.
// Nothing is sent outside the namespaces the cloud creates.
package scenario
