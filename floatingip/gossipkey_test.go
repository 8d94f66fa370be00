package floatingip

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey returns a key of n bytes filled from seed.
func testKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// keyErrText is every error ParseKeys may return: line numbers and fixed
// text, so no byte of the file can ever reach a log.
var keyErrText = regexp.MustCompile(`^(line \d+: (not the base64 of a 16, 24 or 32 byte key|repeats the key of line \d+)|no key)$`)

func TestParseKeys(t *testing.T) {
	k16, k24, k32 := testKey(16, 1), testKey(24, 50), testKey(32, 100)
	raw32 := testKey(32, 200) // not valid base64: read as one raw key
	rawNL := testKey(16, 0)   // a raw key with a newline byte (10) in it
	tests := []struct {
		name    string
		in      string
		want    [][]byte
		wantErr string
	}{
		{name: "one base64 key", in: b64(k32) + "\n", want: [][]byte{k32}},
		{name: "one key without newline, spaces around", in: "  " + b64(k16) + " ", want: [][]byte{k16}},
		{name: "two keys, first sends", in: b64(k32) + "\n" + b64(k16) + "\n", want: [][]byte{k32, k16}},
		{name: "three sizes, crlf", in: b64(k16) + "\r\n" + b64(k24) + "\r\n" + b64(k32) + "\r\n", want: [][]byte{k16, k24, k32}},
		{name: "comments and blank lines", in: "# new key, first since 2026-12-01\n\n" + b64(k24) + "\n# old\n" + b64(k32) + "\n\n", want: [][]byte{k24, k32}},
		{name: "raw 32 bytes", in: string(raw32), want: [][]byte{raw32}},
		{name: "raw 16 ascii", in: "0123456789abcdef", want: [][]byte{[]byte("0123456789abcdef")}},
		{name: "raw key with a newline byte", in: string(rawNL), want: [][]byte{rawNL}},
		{name: "empty file", in: "", wantErr: "no key"},
		{name: "only comments", in: "# nothing yet\n\n", wantErr: "no key"},
		{name: "short key", in: b64(testKey(8, 1)) + "\n", wantErr: "line 1: not the base64 of a 16, 24 or 32 byte key"},
		{name: "bad second line", in: b64(k32) + "\nnot-a-key\n", wantErr: "line 2: not the base64 of a 16, 24 or 32 byte key"},
		{name: "two keys on one line", in: b64(k16) + " " + b64(k16) + "\n", wantErr: "line 1: not the base64 of a 16, 24 or 32 byte key"},
		{name: "repeated key", in: b64(k32) + "\n" + b64(k16) + "\n" + b64(k32) + "\n", wantErr: "line 3: repeats the key of line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys([]byte(tt.in))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
				assert.Regexp(t, keyErrText, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := testKey(32, 1), testKey(32, 2)
	path := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(path, []byte(b64(k1)+"\n"+b64(k2)+"\n"), 0o600))
	got, err := LoadKeyFile(path)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{k1, k2}, got)

	bad := filepath.Join(dir, "bad")
	secret := "c2hvcnRzZWNyZXQ=" // "shortsecret": 11 bytes
	require.NoError(t, os.WriteFile(bad, []byte(b64(k1)+"\n"+secret+"\n"), 0o600))
	_, err = LoadKeyFile(bad)
	require.Error(t, err)
	assert.Equal(t, "read gossip key file "+bad+": line 2: not the base64 of a 16, 24 or 32 byte key", err.Error())
	assert.NotContains(t, err.Error(), secret)
	assert.NotContains(t, err.Error(), b64(k1))

	_, err = LoadKeyFile(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read gossip key file")
}

func FuzzParseKeys(f *testing.F) {
	k16, k32 := testKey(16, 1), testKey(32, 100)
	for _, seed := range []string{
		b64(k32) + "\n", b64(k32) + "\n" + b64(k16) + "\n", "# c\n\n" + b64(k16) + "\r\n",
		string(testKey(32, 200)), string(testKey(16, 0)), "0123456789abcdef", "", "short",
		b64(k32) + "\nnot-a-key\n", b64(k16) + "\n" + b64(k16) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys(b)
		if err != nil {
			if !keyErrText.MatchString(err.Error()) {
				t.Fatalf("error text may leak key bytes: %q", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatalf("no keys and no error from %q", b)
		}
		var lines []string
		for _, k := range keys {
			if n := len(k); n != 16 && n != 24 && n != 32 {
				t.Fatalf("key of %d bytes from %q", n, b)
			}
			lines = append(lines, b64(k))
		}
		// Written back one base64 key per line, as key files are, the
		// keys parse to the same list in the same order.
		again, err := ParseKeys([]byte(strings.Join(lines, "\n") + "\n"))
		require.NoError(t, err)
		assert.Equal(t, keys, again)
	})
}

// startKeyedGossip starts one member with keys on loopback, joined to peers.
func startKeyedGossip(t *testing.T, id int64, keys [][]byte, peers ...string) *gnode {
	t.Helper()
	tr, port := newCtlTransport(t)
	nd := &gnode{id: id, addr: "127.0.0.1:" + strconv.Itoa(port), tr: tr}
	g, err := NewGossip(GossipConfig{Group: "test", Self: id, Bind: "127.0.0.1", Port: port, Peers: peers, Keys: keys, Transport: tr, Log: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Shutdown() })
	nd.g = g
	require.NoError(t, g.SetLocal(LocalState{Ready: true, Priority: 100, Healthy: true, Candidate: true}))
	return nd
}

// TestGossipKeyRotation rotates the key of a running group of three in the
// three steps README gives, member by member, and checks after each member
// that the group still sees all three. At the end only the new key works: a
// member with the new key alone joins, one with the old key alone cannot.
func TestGossipKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(32, 0), testKey(32, 77)
	// Each member joins all earlier ones, so that every view is whole
	// from the start (a member that joined one peer only may learn of the
	// others at the next push/pull, 15 s later).
	var nodes []*gnode
	var addrs []string
	for id := int64(1); id <= 3; id++ {
		nd := startKeyedGossip(t, id, [][]byte{oldKey}, addrs...)
		nodes = append(nodes, nd)
		addrs = append(addrs, nd.addr)
	}
	for _, nd := range nodes {
		waitFor(t, 10*time.Second, nd.g, func(ms []Member) bool { return countAlive(ms) == 3 })
	}
	steps := []struct {
		name string
		keys [][]byte
	}{
		{"add the new key second", [][]byte{oldKey, newKey}},
		{"make the new key first", [][]byte{newKey, oldKey}},
		{"remove the old key", [][]byte{newKey}},
	}
	for _, st := range steps {
		for _, nd := range nodes {
			require.NoError(t, nd.g.SetKeys(st.keys), "%s on member %d", st.name, nd.id)
			// A round trip through every member under the new keyring:
			// each member's view changes only when it hears from the
			// others, so wait for a metadata update from all of them.
			prio := 100 + int(nd.id)*10
			require.NoError(t, nd.g.SetLocal(LocalState{Ready: true, Priority: prio, Healthy: true, Candidate: true}))
			for _, other := range nodes {
				waitFor(t, 10*time.Second, other.g, func(ms []Member) bool {
					return countAlive(ms) == 3 && priorityOf(ms, nd.id) == prio
				})
			}
		}
		assert.Equal(t, st.keys, nodes[0].g.keyring.GetKeys(), st.name)
	}

	fresh := startKeyedGossip(t, 4, [][]byte{newKey}, nodes[0].addr)
	waitFor(t, 10*time.Second, fresh.g, func(ms []Member) bool { return countAlive(ms) == 4 })

	stale := startKeyedGossip(t, 5, [][]byte{oldKey})
	_, err := stale.g.ml.Join([]string{nodes[0].addr})
	assert.Error(t, err, "a member with only the removed key joined")
}

// TestGossipKeyMismatchPartitions is the mistake README warns of: a member
// that switches to a key the others do not have yet drops out of the group.
// It shows that TestGossipKeyRotation could fail.
func TestGossipKeyMismatchPartitions(t *testing.T) {
	nodes := startGossip(t, 3)
	require.NoError(t, nodes[2].g.SetKeys([][]byte{testKey(32, 77)}))
	waitFor(t, 15*time.Second, nodes[0].g, func(ms []Member) bool { return !hasMember(ms, 3) })
}

func TestSetKeysErrors(t *testing.T) {
	g, err := NewGossip(GossipConfig{Group: "g", Self: 1, Bind: "127.0.0.1", Port: 0, Insecure: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Shutdown() })
	assert.ErrorContains(t, g.SetKeys([][]byte{testKey(32, 1)}), "restart")
	assert.ErrorContains(t, g.SetKeys(nil), "no key")
}

func priorityOf(ms []Member, id int64) int {
	for _, m := range ms {
		if m.ID == id && !m.Left {
			return m.Priority
		}
	}
	return -1
}

// TestGossipAdvertisesHostname: members carry each other's hostname (for
// status), and an over-long one is cut to fit memberlist's metadata.
func TestGossipAdvertisesHostname(t *testing.T) {
	key := [][]byte{testKey(32, 5)}
	long := strings.Repeat("h", 300)
	var nodes []*Gossip
	var addrs []string
	for i, name := range []string{"web-1", long} {
		tr, port := newCtlTransport(t)
		g, err := NewGossip(GossipConfig{Group: "test", Self: int64(i + 1), Bind: "127.0.0.1", Port: port, Peers: addrs,
			Keys: key, Hostname: name, Transport: tr, Log: testLogger(t)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = g.Shutdown() })
		require.NoError(t, g.SetLocal(LocalState{Ready: true}))
		nodes = append(nodes, g)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	waitFor(t, 10*time.Second, nodes[0], func(ms []Member) bool {
		names := map[int64]string{}
		for _, m := range ms {
			names[m.ID] = m.Name
		}
		return names[1] == "web-1" && names[2] == long[:maxMetaHostname]
	})
}
