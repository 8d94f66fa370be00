//go:build !linux

package netconf

import (
	"context"
	"errors"
	"io"
)

// nlHandle stands in for the netlink interface of the Linux build, so that
// callers compile everywhere.
type nlHandle any

// RunOnce is `hc-agent apply`; private networks are configured only on Linux.
func RunOnce(ctx context.Context, opts Options, src Source, h nlHandle, ownedPath string, out io.Writer, dryRun bool) error {
	return errors.New("apply private networks: only supported on linux")
}
