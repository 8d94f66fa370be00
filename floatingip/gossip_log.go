package floatingip

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
)

// memberlist logs through a *log.Logger with the level in the text:
// "[ERR] memberlist: Decrypt packet failed: ... from=10.0.0.3:7946".
// memberlistLog maps those lines onto slog with their own level (an [ERR]
// is an error) and turns failed decryption, which repeats with every
// packet of a member with another key, into one warning per peer, a
// counter and a status line (issue 11 defect 5).
type memberlistLog Gossip

// parseMemberlistLine splits one memberlist log line into its level and
// text: "[ERR] memberlist: x" is (error, "x"). A line without a known
// level tag is Info with the whole line as text.
func parseMemberlistLine(line string) (slog.Level, string) {
	line = strings.TrimSpace(line)
	tag, rest, ok := strings.Cut(line, " ")
	level := slog.LevelInfo
	switch {
	case !ok:
		return level, line
	case tag == "[ERR]" || tag == "[ERROR]":
		level = slog.LevelError
	case tag == "[WARN]":
		level = slog.LevelWarn
	case tag == "[INFO]":
	case tag == "[DEBUG]" || tag == "[TRACE]":
		level = slog.LevelDebug
	default:
		return level, line
	}
	rest = strings.TrimSpace(rest)
	return level, strings.TrimPrefix(rest, "memberlist: ")
}

// decryptFailure reports whether text says that a packet or stream did not
// decrypt with any installed key, and from which host.
func decryptFailure(text string) (peer string, ok bool) {
	if !strings.Contains(text, "could decrypt") {
		return "", false
	}
	if _, from, found := strings.Cut(text, "from="); found {
		peer, _, _ = strings.Cut(from, " ")
		// A stream comes from an ephemeral port: the host names the peer.
		if host, _, err := net.SplitHostPort(peer); err == nil {
			peer = host
		}
	}
	return peer, true
}

// Write implements io.Writer for memberlist's logger.
func (l *memberlistLog) Write(p []byte) (int, error) {
	level, text := parseMemberlistLine(string(p))
	if peer, ok := decryptFailure(text); ok {
		(*Gossip)(l).decryptFailed(peer)
		return len(p), nil
	}
	if isRefutation(text) {
		(*Gossip)(l).refuted()
	}
	l.log.Log(context.Background(), level, "memberlist", "detail", text)
	return len(p), nil
}

// decryptFailed records a message from peer that no installed key could
// decrypt: the first one of each peer is logged at warn level.
func (g *Gossip) decryptFailed(peer string) {
	g.mu.Lock()
	g.decryptLast = time.Now()
	first := !slices.Contains(g.decryptPeers, peer)
	if first {
		g.decryptPeers = append(g.decryptPeers, peer)
	}
	g.mu.Unlock()
	if first {
		g.log.Warn("gossip key mismatch: messages from peer do not decrypt", "peer", peer)
	}
	if g.cfg.DecryptFailed != nil {
		g.cfg.DecryptFailed()
	}
}

// DecryptFailures returns the peers whose messages did not decrypt with any
// installed key, and when that last happened (zero if never).
func (g *Gossip) DecryptFailures() (peers []string, last time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.decryptPeers), g.decryptLast
}
