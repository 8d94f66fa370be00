package cloudapitest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
)

// ErrDropped is returned by the in-memory transport for a request that
// DropConnections dropped.
var ErrDropped = errors.New("cloudapitest: connection dropped")

// Transport returns an http.RoundTripper that serves requests in memory,
// without sockets, so clients can use the simulator inside a
// testing/synctest bubble. Any host name works.
func (s *Sim) Transport() http.RoundTripper { return transport{s} }

type transport struct{ s *Sim }

// RoundTrip implements http.RoundTripper.
func (t transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	in := req.Clone(req.Context())
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				resp, err = nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ErrDropped)
				return
			}
			panic(r)
		}
	}()
	t.s.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	res := rec.Result()
	res.Request = req
	return res, nil
}
