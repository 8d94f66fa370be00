package metadata

import (
	"context"
	"net"
	"time"
)

// WithDialContext replaces the default transport's dialer, so tests can
// observe which address the client dials without any traffic leaving
// loopback.
func WithDialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *Client) { c.dial = dial }
}

// WithPrivateNetworksParser replaces ParsePrivateNetworks in the client, so
// tests can count how often PrivateNetworks parses.
func WithPrivateNetworksParser(parse func([]byte) ([]PrivateNetwork, error)) Option {
	return func(c *Client) { c.parsePNs = parse }
}

// Backoff exposes the jittered backoff for tests.
func (c *Client) Backoff(n int) time.Duration { return c.backoff(n) }
