// Package floatingip configures Hetzner Cloud floating IPs on the host and
// runs failover groups that move them between servers.
//
// Two entry points serve the daemon:
//
//   - Manager keeps every floating IP that the API assigns to this server
//     configured on the public NIC (IPv4 as /32, IPv6 as one address of the
//     /64), polling the API a few times per hour (jittered) and on Trigger.
//   - Group runs one failover group: membership and failure detection
//     (memberlist gossip, or keepalived's notify_fifo), health checks, a
//     deterministic role decision (Decide), and the assign/verify/step-down
//     flow against the API, which is the arbiter of who holds an IP.
//
// Only addresses that hc-agent added are ever removed (see Applier).
package floatingip
