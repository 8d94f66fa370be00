package cloudapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Error codes of the API that hc-agent treats specially.
const (
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeInvalidInput      = "invalid_input"
	CodeNotFound          = "not_found"
	CodeLocked            = "locked"
	CodeConflict          = "conflict"
	CodeRateLimitExceeded = "rate_limit_exceeded"
	CodeActionFailed      = "action_failed"
)

// Error is an API error (or an action that ended in error) with the API's
// code and message. It never contains the API token.
type Error struct {
	// Op names the operation and object, e.g. "assign floating ip 7".
	Op string
	// Code is the API's machine-readable code, e.g. "locked".
	Code string
	// Message is the API's text.
	Message string
	// Status is the HTTP status, 0 for an action that ended in error.
	Status int
	// ActionID is set when an action ended in error.
	ActionID int64
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.ActionID != 0 {
		fmt.Fprintf(&b, "action %d failed: ", e.ActionID)
	}
	fmt.Fprintf(&b, "%s (%s", e.Message, e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, ", http %d", e.Status)
	}
	b.WriteString(")")
	switch e.Code {
	case CodeUnauthorized:
		b.WriteString(": the API token is invalid or revoked")
	case CodeForbidden:
		b.WriteString(": the API token lacks permission (read-only token?)")
	}
	return b.String()
}

// IsError reports whether err is or wraps an *Error with one of codes; with
// no codes it reports whether err is an API error at all.
func IsError(err error, codes ...string) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return len(codes) == 0 || slices.Contains(codes, e.Code)
}

// convertError turns hcloud-go's errors into *Error and redacts the token
// from anything that might echo it.
func (c *Client) convertError(op string, err error) error {
	if err == nil {
		return nil
	}
	var he hcloud.Error
	if errors.As(err, &he) {
		e := &Error{Op: op, Code: string(he.Code), Message: c.redact(he.Message)}
		if resp := he.Response(); resp != nil && resp.Response != nil {
			e.Status = resp.StatusCode
		}
		return e
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &opError{op: op, err: err, redact: c.redact}
}

func (c *Client) redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[redacted]")
}

// opError wraps a non-API error (network, deadline) with the operation.
type opError struct {
	op     string
	err    error
	redact func(string) string
}

func (e *opError) Error() string { return e.op + ": " + e.redact(e.err.Error()) }
func (e *opError) Unwrap() error { return e.err }
