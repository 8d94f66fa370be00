package cloudapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const token = "test-token-0123456789"

// Response samples copied from the API reference (Floating IPs, Actions,
// Errors).
const (
	refFloatingIP = `{"blocked":false,"created":"2016-01-30T23:55:00+00:00","description":"this describes my resource","dns_ptr":[{"dns_ptr":"server.example.com","ip":"2001:db8::1"}],"home_location":{"city":"Falkenstein","country":"DE","description":"Falkenstein DC Park 1","id":1,"latitude":50.47612,"longitude":12.370071,"name":"fsn1","network_zone":"eu-central"},"id":42,"ip":"131.232.99.1","labels":{},"name":"my-resource","protection":{"delete":false},"server":42,"type":"ipv4"}`
	refAction     = `{"command":"assign_floating_ip","error":{"code":"action_failed","message":"Action failed"},"finished":"2016-01-30T23:56:00+00:00","id":13,"progress":100,"resources":[{"id":42,"type":"server"},{"id":4711,"type":"floating_ip"}],"started":"2016-01-30T23:55:00+00:00","status":"success"}`
	refMeta       = `{"pagination":{"last_page":4,"next_page":4,"page":3,"per_page":25,"previous_page":2,"total_entries":100}}`
	refError      = `{"error":{"code":"invalid_input","message":"invalid input in field 'broken_field': is too long","details":{"fields":[{"name":"broken_field","messages":["is too long"]}]}}}`
)

// nullable lists the fields the reference documents as possibly null.
var nullable = []string{"finished", "error", "server", "previous_page", "next_page", "last_page", "total_entries", "description"}

// shapeT is the part of testing.T that sameShape uses, so that its own
// test can record failures.
type shapeT interface {
	Helper()
	Errorf(format string, args ...any)
}

type recordT struct{ failures []string }

func (r *recordT) Helper() {}
func (r *recordT) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func TestSameShapeDetectsDifferences(t *testing.T) {
	ref := mustJSON(refFloatingIP)
	tests := []struct {
		name string
		got  string
		fail bool
	}{
		{"identical", refFloatingIP, false},
		{"missing field", strings.Replace(refFloatingIP, `"blocked":false,`, "", 1), true},
		{"wrong type", strings.Replace(refFloatingIP, `"id":42,`, `"id":"42",`, 1), true},
		{"null allowed", strings.Replace(refFloatingIP, `"server":42`, `"server":null`, 1), false},
		{"null not allowed", strings.Replace(refFloatingIP, `"type":"ipv4"`, `"type":null`, 1), true},
		{"nested", strings.Replace(refFloatingIP, `"network_zone":"eu-central"`, `"zone":"eu-central"`, 1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r recordT
			sameShape(&r, "x", ref, mustJSON(tc.got))
			assert.Equal(t, tc.fail, len(r.failures) > 0, "failures: %v", r.failures)
		})
	}
}

// sameShape checks that got has every field of ref with the same JSON type,
// recursively; arrays compare their first elements.
func sameShape(t shapeT, where string, ref, got any) {
	t.Helper()
	switch r := ref.(type) {
	case nil:
		return
	case map[string]any:
		g, ok := got.(map[string]any)
		if !assert.Truef(t, ok, "%s: got %T, want object", where, got) {
			return
		}
		for k, rv := range r {
			gv, ok := g[k]
			if !assert.Truef(t, ok, "%s: missing field %q", where, k) {
				continue
			}
			if gv == nil && rv != nil {
				assert.Truef(t, slices.Contains(nullable, k), "%s.%s: got null, want %T", where, k, rv)
				continue
			}
			sameShape(t, where+"."+k, rv, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !assert.Truef(t, ok, "%s: got %T, want array", where, got) {
			return
		}
		if len(r) > 0 && len(g) > 0 {
			sameShape(t, where+"[0]", r[0], g[0])
		}
	default:
		assert.IsTypef(t, ref, got, "%s: type", where)
	}
}

func mustJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

type rawClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (c rawClient) do(tok, method, path string, body any) (*http.Response, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(c.t, json.Unmarshal(b, &m), "body %s", b)
	}
	return resp, m
}

func newTestSim(t *testing.T, opts ...Option) (*Sim, rawClient) {
	s := New(append([]Option{WithTokens(token)}, opts...)...)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return s, rawClient{t: t, base: srv.URL + "/v1", hc: srv.Client()}
}

func TestConformance(t *testing.T) {
	s, c := newTestSim(t)
	srvID := s.AddServer(Server{Name: "web1", PublicIPv4: netip.MustParseAddr("192.0.2.10"), Labels: map[string]string{"role": "web"}})
	fipID := s.AddFloatingIP(FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.7/32"), ServerID: srvID, Labels: map[string]string{"group": "a"}})

	var actionID float64
	tests := []struct {
		name   string
		method string
		path   func() string
		body   any
		status int
		check  func(t *testing.T, m map[string]any)
	}{
		{"list floating ips", "GET", func() string { return "/floating_ips" }, nil, 200, func(t *testing.T, m map[string]any) {
			sameShape(t, "floating_ips[0]", mustJSON(refFloatingIP), m["floating_ips"].([]any)[0])
			sameShape(t, "meta", mustJSON(refMeta), m["meta"])
		}},
		{"get floating ip", "GET", func() string { return fmt.Sprintf("/floating_ips/%d", fipID) }, nil, 200, func(t *testing.T, m map[string]any) {
			sameShape(t, "floating_ip", mustJSON(refFloatingIP), m["floating_ip"])
			assert.Equal(t, "203.0.113.7", m["floating_ip"].(map[string]any)["ip"])
		}},
		{"create floating ip", "POST", func() string { return "/floating_ips" }, map[string]any{"description": "Web Frontend", "labels": map[string]string{"labelkey": "value"}, "name": "Web Frontend", "server": srvID, "type": "ipv4"}, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "floating_ip", mustJSON(refFloatingIP), m["floating_ip"])
			sameShape(t, "action", mustJSON(refAction), m["action"])
		}},
		{"create ipv6", "POST", func() string { return "/floating_ips" }, map[string]any{"home_location": "fsn1", "type": "ipv6"}, 201, func(t *testing.T, m map[string]any) {
			ip := m["floating_ip"].(map[string]any)["ip"].(string)
			assert.True(t, strings.HasSuffix(ip, "::/64"), "ipv6 ip %q is a /64 network", ip)
		}},
		{"update floating ip", "PUT", func() string { return fmt.Sprintf("/floating_ips/%d", fipID) }, map[string]any{"description": "d", "labels": map[string]string{"group": "a", "x": "y"}}, 200, func(t *testing.T, m map[string]any) {
			sameShape(t, "floating_ip", mustJSON(refFloatingIP), m["floating_ip"])
			assert.Equal(t, map[string]any{"group": "a", "x": "y"}, m["floating_ip"].(map[string]any)["labels"])
		}},
		{"assign", "POST", func() string { return fmt.Sprintf("/floating_ips/%d/actions/assign", fipID) }, map[string]any{"server": srvID}, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
			actionID = m["action"].(map[string]any)["id"].(float64)
		}},
		{"get action", "GET", func() string { return fmt.Sprintf("/actions/%d", int64(actionID)) }, nil, 200, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
		}},
		{"list actions by id", "GET", func() string { return fmt.Sprintf("/actions?id=%d", int64(actionID)) }, nil, 200, func(t *testing.T, m map[string]any) {
			require.Len(t, m["actions"], 1)
			sameShape(t, "actions[0]", mustJSON(refAction), m["actions"].([]any)[0])
			sameShape(t, "meta", mustJSON(refMeta), m["meta"])
		}},
		{"floating ip actions", "GET", func() string { return fmt.Sprintf("/floating_ips/%d/actions", fipID) }, nil, 200, func(t *testing.T, m map[string]any) {
			require.Len(t, m["actions"], 1)
			sameShape(t, "actions[0]", mustJSON(refAction), m["actions"].([]any)[0])
		}},
		{"all floating ip actions", "GET", func() string { return "/floating_ips/actions?sort=id:desc" }, nil, 200, func(t *testing.T, m map[string]any) {
			require.NotEmpty(t, m["actions"])
			sameShape(t, "actions[0]", mustJSON(refAction), m["actions"].([]any)[0])
			sameShape(t, "meta", mustJSON(refMeta), m["meta"])
		}},
		{"floating ip action", "GET", func() string { return fmt.Sprintf("/floating_ips/%d/actions/%d", fipID, int64(actionID)) }, nil, 200, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
		}},
		{"unassign", "POST", func() string { return fmt.Sprintf("/floating_ips/%d/actions/unassign", fipID) }, nil, 201, func(t *testing.T, m map[string]any) {
			sameShape(t, "action", mustJSON(refAction), m["action"])
			assert.Equal(t, "unassign_floating_ip", m["action"].(map[string]any)["command"])
		}},
		{"list servers", "GET", func() string { return "/servers?label_selector=role%3Dweb" }, nil, 200, func(t *testing.T, m map[string]any) {
			require.Len(t, m["servers"], 1)
			srv := m["servers"].([]any)[0].(map[string]any)
			sameShape(t, "server", mustJSON(`{"id":1,"name":"x","status":"running","labels":{},"public_net":{"ipv4":{"ip":"1.2.3.4"},"ipv6":{"ip":"2001:db8::/64"},"floating_ips":[]},"private_net":[]}`), srv)
			sameShape(t, "meta", mustJSON(refMeta), m["meta"])
		}},
		{"get server", "GET", func() string { return fmt.Sprintf("/servers/%d", srvID) }, nil, 200, func(t *testing.T, m map[string]any) {
			assert.Equal(t, "web1", m["server"].(map[string]any)["name"])
		}},
		{"delete", "DELETE", func() string { return fmt.Sprintf("/floating_ips/%d", fipID) }, nil, 204, nil},
		{"invalid input", "GET", func() string { return "/floating_ips?label_selector=a%3D%3D%3D" }, nil, 400, func(t *testing.T, m map[string]any) {
			sameShape(t, "body", mustJSON(refError), m)
		}},
		{"not found", "GET", func() string { return "/floating_ips/999999" }, nil, 404, func(t *testing.T, m map[string]any) {
			assert.Equal(t, "not_found", m["error"].(map[string]any)["code"])
		}},
		{"json error", "POST", func() string { return "/floating_ips" }, json.RawMessage(`[]`), 400, func(t *testing.T, m map[string]any) {
			assert.Equal(t, "json_error", m["error"].(map[string]any)["code"])
		}},
		{"unknown path", "GET", func() string { return "/volumes" }, nil, 404, func(t *testing.T, m map[string]any) {
			assert.Equal(t, "not_found", m["error"].(map[string]any)["code"])
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			resp, m := c.do(token, tc.method, tc.path(), tc.body)
			require.Equal(t, tc.status, resp.StatusCode, "body %v", m)
			for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
				assert.NotEmpty(t, resp.Header.Get(h), h)
			}
			if tc.status != http.StatusNoContent {
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}
