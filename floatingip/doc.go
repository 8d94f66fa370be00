// Package floatingip decides which server holds a group's addresses and
// keeps the floating IPs assigned to this server configured on the host.
//
// Two entry points serve the daemon:
//
//   - Manager keeps every floating IP that the API assigns to this server
//     configured on the public NIC (IPv4 as /32, IPv6 as one address of the
//     /64), reading the API a few times per hour (jittered) and on Trigger;
//     after a failed read it retries from 5 s, doubling up to the interval.
//     On a standby of a failover group it makes no periodic read and
//     follows the digest of the holder's reads instead (ReadShare).
//   - Group runs one failover group: membership and failure detection
//     (memberlist gossip, or keepalived's notify_fifo), health checks, a
//     deterministic role decision (Decide), back-off, a move cap and the
//     hand-over on shutdown. What holding means is behind a Handler, one per
//     kind of address; the API is the arbiter of who holds.
//
// The host work for floating IPs is netconf's (netconf.FloatingIPApplier,
// which implements Host): it finds the public NIC by its 96: MAC, adds IPv6
// addresses without duplicate address detection and returns only once the
// kernel routes them locally, and only ever removes addresses that
// hc-agent added.
//
// # Address kinds
//
// A Group knows nothing about the addresses it moves: it calls its Handler
// (GroupDeps.Handler), and the decision, gossip and health code never look
// past it. The handlers: FloatingIPs (EgressFloatingIPs when the group
// has egress), AliasIPs and RouteIPs for private VIPs (an alias IP of the
// holder's network attachment; a network route to the holder), and
// Handlers for a group with addresses of several kinds. A new kind plugs
// in by implementing Handler and passing it in GroupDeps.Handler; the
// group's code does not change.
//
// The group calls the handler from its own goroutine (Status excepted), in
// this order:
//
//  1. At start, Holder until it succeeds (with back-off), then adoption:
//     Configure if Holder returned this server (a restarted holder keeps
//     its addresses without a move), Unconfigure otherwise (remove what a
//     previous run left).
//  2. Periodically (refresh_interval, jittered) and on Group.Refresh:
//     Holder. If this member holds and Holder names another server, the
//     member steps down: Unconfigure and back off.
//  3. To take the addresses (the decision says so, or keepalived says
//     MASTER): Configure first (the fast path: the host answers the
//     moment the cloud routes to it), then Holder again with an urgent
//     context (the decision is re-checked on that fresh read), then
//     Acquire with an urgent context, then Holder to verify. Only a Holder
//     result of this server counts as success (MoveSuccess); otherwise the
//     group runs Unconfigure and backs off. When Acquire's error wraps
//     ErrMoveFailed and the holder did not change, the result is
//     MoveError (our move failed, retried after at most 1 s), else
//     MoveLost (another member won). MoveAborted: the fresh read showed a
//     holder that is fine; nothing was moved.
//  4. On step-down, hand-over and loss: Unconfigure. There is no Release:
//     the member that takes moves the addresses (assign; read-modify-write
//     of both alias lists; delete then add of a route), so giving up is
//     local only and cannot fail on the API.
//
// What each method must guarantee:
//
//   - Holder reports which server holds the addresses as the API says, and
//     treats them as one unit: this server only if it holds all of them
//     (so an IPv6 floating IP follows the IPv4 one of the same group, and
//     a half-done move is retried), else the holder of the first assigned
//     one, else 0. It is the only way the group learns who holds by the
//     API; gossip claims may update the group's view in between. It
//     caches what it read for Configure, Acquire and Status.
//   - Configure and Unconfigure are idempotent, touch only the group's own
//     host state (an owner per group), and Unconfigure succeeds when
//     nothing is configured.
//   - Acquire skips addresses already held here, waits for each move to end
//     (bounded by its own timeout and ctx), and wraps ErrMoveFailed only
//     when every failure was a move that the API ran and that failed; a
//     refused call (locked, conflict, rate limit) must not wrap it.
//   - Status is safe from any goroutine and never calls the API.
//
// Calls made while failing over carry a context marked by GroupDeps.Urgent
// (cloudapi.WithUrgent): a handler passes that context to the API client
// unchanged, so that failover requests go before the manager's polling in
// the one request budget.
package floatingip
