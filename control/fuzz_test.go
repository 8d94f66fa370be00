package control

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHandler sends arbitrary requests to the control protocol: the
// handler never panics, always answers JSON, and answers a malformed body
// with 400 and an error, never by acting.
func FuzzHandler(f *testing.F) {
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/handover", `{"groups":["web"]}`},
		{"POST", "/v1/resume", ``},
		{"POST", "/v1/handover", `{"groups":[1]}`},
		{"POST", "/v1/handover", `{"groups":["nope"]}`},
		{"GET", "/v1/status", ``},
		{"POST", "/v1/reload", `x`},
		{"DELETE", "/v1/handover", `{}`},
	} {
		f.Add(tc.method, tc.path, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		req, err := http.NewRequest(method, "http://hc-agent"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		d := newFakeDaemon("web", "db")
		rec := httptest.NewRecorder()
		Handler(d).ServeHTTP(rec, req)
		if rec.Code == http.StatusBadRequest && rec.Header().Get("Content-Type") == "application/json" {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without an error body: %q", rec.Body.String())
			}
			if len(d.Status(t.Context()).(fakeStatus).Drained) != 0 {
				t.Fatalf("a refused request drained a group")
			}
		}
		if rec.Code == http.StatusOK && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s answered 200 with invalid JSON %q", method, path, rec.Body.String())
		}
	})
}
