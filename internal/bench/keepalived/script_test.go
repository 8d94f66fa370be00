package keepalived

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testToken = "test-token-not-a-secret"

// fakeAPI is the part of the Hetzner Cloud API the notify script uses:
// assign returns a running action, which succeeds (or fails) after a given
// number of polls.
type fakeAPI struct {
	mu          sync.Mutex
	pollsNeeded int
	fail        bool
	assigned    []int64 // server IDs, in order
	polls       int
	unauthed    int
	notify      chan int64 // if not nil, receives each assigned server ID
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		f.unauthed++
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"unable to authenticate"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/floating_ips/4711/actions/assign":
		var body struct{ Server int64 }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.assigned = append(f.assigned, body.Server)
		if f.notify != nil {
			f.notify <- body.Server
		}
		w.WriteHeader(http.StatusCreated)
		// Pretty-printed and with nested ids, like the reference's samples.
		fmt.Fprintf(w, "{\n  \"action\": {\n    \"command\": \"assign_floating_ip\",\n    \"error\": null,\n    \"id\": %d,\n    \"progress\": 0,\n    \"resources\": [{\"id\": %d, \"type\": \"server\"}, {\"id\": 4711, \"type\": \"floating_ip\"}],\n    \"status\": \"running\"\n  }\n}\n", 100+len(f.assigned), body.Server)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/actions/"):
		f.polls++
		status := "running"
		if f.polls >= f.pollsNeeded {
			status = "success"
			if f.fail {
				status = "error"
			}
		}
		fmt.Fprintf(w, `{"action":{"id":%s,"command":"assign_floating_ip","status":%q,"progress":100}}`, strings.TrimPrefix(r.URL.Path, "/v1/actions/"), status)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// writeHeaderFile writes the curl header file with the token, mode 0600.
func writeHeaderFile(t *testing.T, dir, token string) string {
	t.Helper()
	p := filepath.Join(dir, "headers")
	require.NoError(t, os.WriteFile(p, []byte("Authorization: Bearer "+token+"\n"), 0o600))
	return p
}

func TestScriptRun(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	tests := []struct {
		name     string
		arg      string
		token    string
		polls    int
		fail     bool
		wantExit int
		wantLog  []string
		assigned []int64
	}{
		{name: "master waits for the action", arg: "master", token: testToken, polls: 3, assigned: []int64{42},
			wantLog: []string{"notify master", "assign requested 101", "assign done 101"}},
		{name: "action error", arg: "master", token: testToken, polls: 1, fail: true, wantExit: 1, assigned: []int64{42},
			wantLog: []string{"notify master", "assign requested 101", "assign error 101"}},
		{name: "backup does nothing", arg: "backup", token: testToken},
		{name: "bad token", arg: "master", token: "wrong", wantExit: 1, wantLog: []string{"notify master", "assign rejected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{pollsNeeded: tt.polls, fail: tt.fail}
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			s := Script{
				Endpoint: srv.URL + "/v1/", HeaderFile: writeHeaderFile(t, dir, tt.token),
				FloatingIPID: 4711, ServerID: 42, LogFile: filepath.Join(dir, "notify.log"),
				PollInterval: 10 * time.Millisecond,
			}
			text, err := s.Render()
			require.NoError(t, err)
			assert.NotContains(t, text, testToken)
			path := filepath.Join(dir, "notify.sh")
			require.NoError(t, os.WriteFile(path, []byte(text), 0o700))

			out, err := exec.Command("sh", path, tt.arg).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantExit, code, "output: %s", out)
			var got []string
			if b, err := os.ReadFile(s.LogFile); err == nil {
				for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					_, msg, _ := strings.Cut(l, " ")
					got = append(got, msg)
				}
			}
			assert.Equal(t, tt.wantLog, got)
			api.mu.Lock()
			defer api.mu.Unlock()
			assert.Equal(t, tt.assigned, api.assigned)
		})
	}
}

func TestScriptRenderValidates(t *testing.T) {
	_, err := Script{Endpoint: "http://x"}.Render()
	assert.Error(t, err)
	text, err := Script{Endpoint: "http://x/v1", HeaderFile: "/h'q", FloatingIPID: 1, ServerID: 2, LogFile: "/l"}.Render()
	require.NoError(t, err)
	assert.Contains(t, text, `HEADERS='/h'\''q'`)
	assert.Contains(t, text, "sleep 1\n")
}
