package config

import "errors"

// ExitCode is the process exit status for a configuration error: EX_CONFIG
// of sysexits(3). The systemd unit lists it in RestartPreventExitStatus=, so
// a configuration error fails the unit once, with the reason as the last
// lines of `systemctl status`, instead of restarting into a start limit.
const ExitCode = 78

// Error marks err as a problem of the configuration (a file the operator
// must fix: the config itself, the token file, a key file, the metrics web
// config): restarting cannot help.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// IsError reports whether err is, or wraps, a configuration Error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
