package floatingip

import (
	"context"
	"errors"
)

// Handler is what holding means for one kind of address (floating IPs;
// later alias and route VIPs). A Group decides who holds; its Handler
// configures the addresses on this host and moves them through the API.
// The decision, gossip and health code know nothing else about the
// addresses. See the package documentation for when the group calls each
// method and what each must guarantee.
//
// Methods are called from the group's goroutine only, except Status, which
// may be called from any goroutine.
type Handler interface {
	// Kind names the kind of address, for logs and status.
	Kind() AddressKind
	// Holder reads from the API, the arbiter, which server holds the
	// group's addresses and returns its ID: this server only if it holds
	// every address of the group (the addresses move as one unit, e.g.
	// IPv6 follows IPv4), otherwise the holder of the first assigned
	// address, or 0 when none is assigned. It remembers what it read for
	// Configure, Acquire and Status. An error means the holder is unknown;
	// the handler keeps what it read before.
	Holder(ctx context.Context) (int64, error)
	// Configure configures every address on this host, idempotently. The
	// group calls it before Acquire (the fast path: answer as soon as the
	// cloud routes to us) and at start when Holder says this server
	// holds (adoption without a move).
	Configure(ctx context.Context) error
	// Unconfigure removes every address of the group from this host and
	// only those, idempotently; it succeeds when nothing is configured.
	Unconfigure(ctx context.Context) error
	// Acquire moves every address not yet held by this server here through
	// the API and waits until the moves are done (or failed). It does not
	// verify: the group calls Holder afterwards. When every failure was a
	// move that ran and failed (an action that ended in "error"), the
	// error wraps ErrMoveFailed; any other error (a refused or failed
	// call, a timeout) does not, since another member's move may be
	// running.
	Acquire(ctx context.Context) error
	// Status describes each address as last read.
	Status() []AddressStatus
}

// AddressKind is a kind of address a group can hold.
type AddressKind string

// Address kinds.
const (
	KindFloatingIP AddressKind = "floating_ip"
)

// ErrMoveFailed is wrapped by Handler.Acquire when the API ran the moves
// and they failed; see Handler.
var ErrMoveFailed = errors.New("move failed")

// MoveResult is the outcome of one attempt to take a group's addresses.
type MoveResult string

// Move results.
const (
	// MoveSuccess: this member holds the addresses, verified by the API.
	MoveSuccess MoveResult = "success"
	// MoveLost: another member won the race.
	MoveLost MoveResult = "lost"
	// MoveAborted: a fresh read showed a healthy holder; nothing was moved.
	MoveAborted MoveResult = "aborted"
	// MoveError: the move failed and nobody else took the addresses.
	MoveError MoveResult = "error"
)
