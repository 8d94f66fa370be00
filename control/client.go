package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
)

// Client talks to a daemon's control socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client for the socket at path. It connects per
// request.
func NewClient(path string) *Client {
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}}
}

// ErrNotRunning means nothing listens on the socket: the daemon is not
// running (or runs with another runtime_dir).
var ErrNotRunning = errors.New("hc-agent is not running")

// RefusedError is the daemon's answer to a request it did not carry out.
type RefusedError struct {
	Op     string
	Status int
	Msg    string
}

func (e *RefusedError) Error() string { return e.Op + ": " + e.Msg }

// Status decodes the daemon's status document into v.
func (c *Client) Status(ctx context.Context, v any) error {
	return c.do(ctx, "status", http.MethodGet, "/v1/status", nil, v)
}

// Handover asks the daemon to hand the IPs of groups (all when empty) to a
// healthy peer and stay out of candidacy.
func (c *Client) Handover(ctx context.Context, groups []string) error {
	return c.do(ctx, "handover", http.MethodPost, "/v1/handover", groupsRequest{Groups: groups}, nil)
}

// Resume makes the member a candidate again in groups (all when empty).
func (c *Client) Resume(ctx context.Context, groups []string) error {
	return c.do(ctx, "resume", http.MethodPost, "/v1/resume", groupsRequest{Groups: groups}, nil)
}

// Reload asks the daemon to re-read its configuration; a RefusedError says
// why the new one was refused.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, "reload", http.MethodPost, "/v1/reload", nil, nil)
}

// maxResponse bounds what the client reads (status documents are a few KB).
const maxResponse = 4 << 20

func (c *Client) do(ctx context.Context, op, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hc-agent"+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%s: %w (no daemon on %s)", op, ErrNotRunning, c.path)
		}
		return fmt.Errorf("%s: connect to control socket %s: %w", op, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s: read response from %s: %w", op, c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("status %d", resp.StatusCode)
		}
		return &RefusedError{Op: op, Status: resp.StatusCode, Msg: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: decode response from %s: %w", op, c.path, err)
	}
	return nil
}
