package floatingip

import (
	"context"
	"errors"
)

// Handlers is the Handler of a group whose addresses are of several kinds,
// e.g. floating IPs and private VIPs: they move as one unit, as the
// floating IPs of one group do. Each method calls every handler in order
// and keeps going past a failure.
type Handlers struct {
	// Self is this server's ID.
	Self int64
	List []Handler
}

var _ Handler = Handlers{}

// Kind returns the handlers' kind when they share one, else KindMixed.
func (hs Handlers) Kind() AddressKind {
	if len(hs.List) == 0 {
		return KindMixed
	}
	k := hs.List[0].Kind()
	for _, h := range hs.List[1:] {
		if h.Kind() != k {
			return KindMixed
		}
	}
	return k
}

// Holder asks every handler and combines the answers as one handler does
// for its addresses: this server only if every handler says so, else the
// first other holder, else 0 (a half-done move is moved again). Any error
// makes the holder unknown.
func (hs Handlers) Holder(ctx context.Context) (int64, error) {
	var errs []error
	all := len(hs.List) > 0
	var first int64
	for _, h := range hs.List {
		id, err := h.Holder(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if id != hs.Self {
			all = false
			if first == 0 && id != 0 {
				first = id
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if all {
		return hs.Self, nil
	}
	return first, nil
}

// Configure configures every handler's addresses.
func (hs Handlers) Configure(ctx context.Context) error {
	var errs []error
	for _, h := range hs.List {
		errs = append(errs, h.Configure(ctx))
	}
	return errors.Join(errs...)
}

// Unconfigure removes every handler's addresses.
func (hs Handlers) Unconfigure(ctx context.Context) error {
	var errs []error
	for _, h := range hs.List {
		errs = append(errs, h.Unconfigure(ctx))
	}
	return errors.Join(errs...)
}

// Acquire moves every handler's addresses here. The error wraps
// ErrMoveFailed only when every handler that failed reports a failed move.
func (hs Handlers) Acquire(ctx context.Context) error {
	var errs []error
	allMoveFailed := true
	for _, h := range hs.List {
		if err := h.Acquire(ctx); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, ErrMoveFailed) {
				allMoveFailed = false
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if !allMoveFailed {
		// Some handler's failure was a refused call: strip the sentinel
		// so the combined error does not claim our move failed.
		return stripMoveFailed(errs)
	}
	return err
}

// moveFailedStripped hides ErrMoveFailed from errors.Is while keeping the
// message and every other error reachable.
type moveFailedStripped struct{ errs []error }

func (e moveFailedStripped) Error() string { return errors.Join(e.errs...).Error() }

// Unwrap returns the underlying errors, without the ErrMoveFailed
// sentinel: errors.Is(e, ErrMoveFailed) is false, cloudapi.IsError works.
func (e moveFailedStripped) Unwrap() []error {
	var out []error
	for _, err := range e.errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				if inner != ErrMoveFailed {
					out = append(out, inner)
				}
			}
			continue
		}
		out = append(out, err)
	}
	return out
}

func stripMoveFailed(errs []error) error { return moveFailedStripped{errs: errs} }

// Status lists every handler's addresses, each with its handler's kind.
func (hs Handlers) Status() []AddressStatus {
	var out []AddressStatus
	for _, h := range hs.List {
		for _, s := range h.Status() {
			if s.Kind == "" {
				s.Kind = h.Kind()
			}
			out = append(out, s)
		}
	}
	return out
}
