package floatingip

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var memberlistLines = []struct {
	line      string
	wantLevel slog.Level
	wantText  string
}{
	{"[ERR] memberlist: Failed to send ack: x from=10.0.0.3:7946", slog.LevelError, "Failed to send ack: x from=10.0.0.3:7946"},
	{"[WARN] memberlist: Got ping for unexpected node 4 from=10.0.0.4:7946\n", slog.LevelWarn, "Got ping for unexpected node 4 from=10.0.0.4:7946"},
	{"[INFO] memberlist: Marking 3 as failed, suspect timeout reached (0 peer confirmations)", slog.LevelInfo, "Marking 3 as failed, suspect timeout reached (0 peer confirmations)"},
	{"[DEBUG] memberlist: Stream connection from=10.0.0.2:41234", slog.LevelDebug, "Stream connection from=10.0.0.2:41234"},
	{"no level at all", slog.LevelInfo, "no level at all"},
	{"[BOGUS] memberlist: x", slog.LevelInfo, "[BOGUS] memberlist: x"},
	{"", slog.LevelInfo, ""},
	{"  [WARN] memberlist: leading space\n", slog.LevelWarn, "leading space"},
}

func TestParseMemberlistLine(t *testing.T) {
	for _, tt := range memberlistLines {
		t.Run(tt.line, func(t *testing.T) {
			level, text := parseMemberlistLine(tt.line)
			assert.Equal(t, tt.wantLevel, level)
			assert.Equal(t, tt.wantText, text)
		})
	}
}

func FuzzParseMemberlistLine(f *testing.F) {
	for _, tt := range memberlistLines {
		f.Add(tt.line)
	}
	f.Add("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.3:7946")
	f.Fuzz(func(t *testing.T, line string) {
		level, text := parseMemberlistLine(line)
		// The text is part of the line, and a line whose first word (after
		// the blanks the parser trims) is not a level tag is Info.
		assert.LessOrEqual(t, len(text), len(line))
		if !strings.HasPrefix(strings.TrimSpace(line), "[") {
			assert.Equal(t, slog.LevelInfo, level)
		}
		decryptFailure(text) // no panic
	})
}

// recordHandler records the level and message of each record.
type recordHandler struct {
	mu   sync.Mutex
	recs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.recs = append(h.recs, b.String())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) records() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.recs...)
}

// TestMemberlistLogLevels checks that memberlist's levels are kept: an
// [ERR] line was logged at debug level (issue 11 defect 5).
func TestMemberlistLogLevels(t *testing.T) {
	h := &recordHandler{}
	g := &Gossip{log: slog.New(h)}
	w := (*memberlistLog)(g)
	for _, tt := range memberlistLines[:4] {
		_, err := w.Write([]byte(tt.line))
		require.NoError(t, err)
	}
	assert.Equal(t, []string{
		"ERROR memberlist detail=Failed to send ack: x from=10.0.0.3:7946",
		"WARN memberlist detail=Got ping for unexpected node 4 from=10.0.0.4:7946",
		"INFO memberlist detail=Marking 3 as failed, suspect timeout reached (0 peer confirmations)",
		"DEBUG memberlist detail=Stream connection from=10.0.0.2:41234",
	}, h.records())
}

// TestGossipKeyMismatch runs two members with different keys: each logs
// the mismatch once at warn level with the peer's address, counts every
// undecryptable message, and sees no peer (issue 11 defect 5).
func TestGossipKeyMismatch(t *testing.T) {
	type node struct {
		g      *Gossip
		h      *recordHandler
		fails  atomic.Int64
		failed chan struct{}
		addr   string
	}
	var nodes []*node
	for i := range 2 {
		key := bytes.Repeat([]byte{byte(i + 1)}, 32)
		tr, port := newCtlTransport(t)
		n := &node{h: &recordHandler{}, failed: make(chan struct{}, 1), addr: "127.0.0.1:" + strconv.Itoa(port)}
		var peers []string
		if i > 0 {
			peers = []string{nodes[0].addr}
		}
		g, err := NewGossip(GossipConfig{Group: "test", Self: int64(i + 1), Bind: "127.0.0.1", Port: port, Peers: peers, Keys: [][]byte{key},
			Transport: tr, Log: slog.New(n.h), DecryptFailed: func() {
				// The join and its retry (every 5 s) both fail.
				if n.fails.Add(1) >= 2 {
					select {
					case n.failed <- struct{}{}:
					default:
					}
				}
			}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = g.Shutdown() })
		n.g = g
		nodes = append(nodes, n)
	}
	// The joining member's messages reach the first one, which cannot
	// read them; wait until two did not decrypt.
	select {
	case <-nodes[0].failed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no decrypt failure counted: %d", nodes[0].fails.Load())
	}
	warns := 0
	for _, r := range nodes[0].h.records() {
		if strings.HasPrefix(r, "WARN gossip key mismatch") {
			warns++
			assert.Contains(t, r, "peer=127.0.0.1", "names the peer address")
		}
		assert.NotContains(t, r, "could decrypt", "a decrypt failure logged as a memberlist line")
	}
	assert.Equal(t, 1, warns, "one warning for many failures: %v", nodes[0].h.records())
	peers, last := nodes[0].g.DecryptFailures()
	assert.Len(t, peers, 1)
	assert.False(t, last.IsZero())
	assert.Equal(t, 1, countAlive(nodes[0].g.Members()), "sees only itself")
}
