//go:build !linux

package control

import (
	"errors"
	"net"
)

// peerUID is not implemented off Linux: every connection is refused.
func peerUID(net.Conn) (int, error) { return -1, errors.New("peer credentials need Linux") }
