package metadata

import (
	"errors"
	"strconv"
	"strings"
)

// ErrorKind classifies a metadata error so that callers can decide what to do
// without parsing messages.
type ErrorKind int

const (
	// KindNotFound means the service answered 404 for the path. It is never
	// retried: the key does not exist on this server.
	KindNotFound ErrorKind = iota + 1
	// KindUnavailable means no usable answer arrived: transport errors,
	// timeouts, 5xx or 429 after all attempts, other unexpected statuses,
	// refused redirects, or a cancelled context.
	KindUnavailable
	// KindMalformed means the service answered but the body cannot be used:
	// invalid YAML, a value that does not parse or validate, or a body over
	// MaxBodySize.
	KindMalformed
)

// String returns the kind as it appears in error messages.
func (k ErrorKind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindUnavailable:
		return "unavailable"
	case KindMalformed:
		return "malformed"
	default:
		return "kind " + strconv.Itoa(int(k))
	}
}

// Error is the error type returned by the Client and by the Parse functions.
// Inspect it with errors.As or with IsNotFound, IsUnavailable and IsMalformed.
type Error struct {
	// Path is the metadata key the error is about ("" for the summary,
	// "private-networks", ...).
	Path string
	// Kind classifies the error.
	Kind ErrorKind
	// Status is the HTTP status of the last response, or 0 when none arrived
	// (transport error, timeout) or the error came from a Parse function.
	Status int
	// Attempts is how many requests were made, or 0 for Parse functions.
	Attempts int
	// Field names the offending value of a malformed document, for example
	// "instance-id" or "[0].alias_ips[1]"; empty when the whole body is bad.
	Field string
	// Err is the underlying cause, if any.
	Err error
}

// Error renders e as, for example,
// "metadata private-networks: malformed: field [0].alias_ips[1]: ParseAddr(...): ...".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("metadata ")
	b.WriteString(pathName(e.Path))
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		b.WriteString(": status ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Attempts > 1 {
		b.WriteString(" after ")
		b.WriteString(strconv.Itoa(e.Attempts))
		b.WriteString(" attempts")
	}
	if e.Field != "" {
		b.WriteString(": field ")
		b.WriteString(e.Field)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, context.Canceled)
// and similar checks work.
func (e *Error) Unwrap() error { return e.Err }

// pathName is how a key appears in messages: the summary has no key of its
// own, so it gets a name.
func pathName(key string) string {
	if key == "" {
		return "summary"
	}
	return key
}

// IsNotFound reports whether err is, or wraps, a metadata Error of KindNotFound.
func IsNotFound(err error) bool { return isKind(err, KindNotFound) }

// IsUnavailable reports whether err is, or wraps, a metadata Error of
// KindUnavailable.
func IsUnavailable(err error) bool { return isKind(err, KindUnavailable) }

// IsMalformed reports whether err is, or wraps, a metadata Error of
// KindMalformed.
func IsMalformed(err error) bool { return isKind(err, KindMalformed) }

func isKind(err error, k ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// malformed builds the error the Parse functions return.
func malformed(key, field string, err error) *Error {
	return &Error{Path: key, Kind: KindMalformed, Field: field, Err: err}
}
