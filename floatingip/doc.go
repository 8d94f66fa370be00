// Package floatingip configures Hetzner Cloud floating IPs on the host and
// runs failover groups that move them between servers.
//
// Two entry points serve the daemon:
//
//   - Manager keeps every floating IP that the API assigns to this server
//     configured on the public NIC (IPv4 as /32, IPv6 as one address of the
//     /64), reading the API a few times per hour (jittered) and on Trigger;
//     after a failed read it retries from 5 s, doubling up to the interval.
//   - Group runs one failover group: membership and failure detection
//     (memberlist gossip, or keepalived's notify_fifo), health checks, a
//     deterministic role decision (Decide), and the assign/verify/step-down
//     flow against the API, which is the arbiter of who holds an IP.
//
// Applier does the host work for both: it finds the public NIC by its 96:
// MAC, adds IPv6 addresses without duplicate address detection and returns
// only once the kernel routes them locally, and only ever removes addresses
// that hc-agent added.
package floatingip
