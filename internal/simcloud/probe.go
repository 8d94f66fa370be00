package simcloud

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Sample is one probe request.
type Sample struct {
	// At is when the request started.
	At time.Time
	// Latency is how long it took to answer or fail.
	Latency time.Duration
	// Server is the answer (the name service's name); empty on error.
	Server string
	// Err is why the request failed, nil on success.
	Err error
}

// OK reports whether the request succeeded.
func (s Sample) OK() bool { return s.Err == nil }

// Outage is a run of failed requests as a client sees it.
type Outage struct {
	// From is the start of the first failed request.
	From time.Time
	// To is the start of the first successful request after the run; zero
	// when the outage lasted to the end of the probe.
	To time.Time
	// Failures is the number of failed requests in the run.
	Failures int
	// Before and After are the servers that answered just before and just
	// after the outage ("" when none did).
	Before, After string
}

// Duration is To - From, or 0 for an outage that had not ended.
func (o Outage) Duration() time.Duration {
	if o.To.IsZero() {
		return 0
	}
	return o.To.Sub(o.From)
}

// Ongoing reports whether the outage lasted to the end of the probe.
func (o Outage) Ongoing() bool { return o.To.IsZero() }

// Outages finds the runs of failures in samples (in any order). The
// resolution is the probe interval: a request starts every interval even
// while earlier ones are still waiting for their timeout.
func Outages(samples []Sample) []Outage {
	s := slices.Clone(samples)
	slices.SortStableFunc(s, func(a, b Sample) int { return a.At.Compare(b.At) })
	var (
		out  []Outage
		cur  *Outage
		last string
	)
	for _, x := range s {
		switch {
		case !x.OK() && cur == nil:
			cur = &Outage{From: x.At, Failures: 1, Before: last}
		case !x.OK():
			cur.Failures++
		case cur != nil:
			cur.To, cur.After = x.At, x.Server
			out = append(out, *cur)
			cur = nil
			last = x.Server
		default:
			last = x.Server
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// LongestOutage returns the longest finished outage in samples, and false
// when there was none. An outage that had not ended is reported with ok
// false and its From set; check Outages for it.
func LongestOutage(samples []Sample) (Outage, bool) {
	var (
		best  Outage
		found bool
	)
	for _, o := range Outages(samples) {
		if o.Ongoing() {
			continue
		}
		if !found || o.Duration() > best.Duration() {
			best, found = o, true
		}
	}
	return best, found
}

// Probe sends a GET to one URL every interval and records the answers.
type Probe struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	mu      sync.Mutex
	samples []Sample
}

// StartProbe starts probing url with client (for example Cloud.Client()).
// Each request has its own timeout and requests overlap when they take
// longer than the interval, so a black-holed request does not hide the
// moment the service comes back. Stop ends it.
func StartProbe(ctx context.Context, client *http.Client, url string, interval, timeout time.Duration) *Probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &Probe{cancel: cancel, done: make(chan struct{})}
	// The loop exits when ctx ends (Stop cancels it); it waits for the
	// requests it started before closing done.
	go func() {
		defer close(p.done)
		defer p.wg.Wait()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p.wg.Add(1)
			go p.once(ctx, client, url, timeout)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *Probe) once(ctx context.Context, client *http.Client, url string, timeout time.Duration) {
	defer p.wg.Done()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := get(rctx, client, url)
	if ctx.Err() != nil {
		return // stopped: not a failure of the service
	}
	s := Sample{At: start, Latency: time.Since(start), Server: body, Err: err}
	if err != nil {
		s.Server = ""
	}
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// Samples returns the samples recorded so far, ordered by start time.
func (p *Probe) Samples() []Sample {
	p.mu.Lock()
	s := slices.Clone(p.samples)
	p.mu.Unlock()
	slices.SortStableFunc(s, func(a, b Sample) int { return a.At.Compare(b.At) })
	return s
}

// Stop ends the probe, waits for requests in flight and returns all
// samples. Requests cut short by Stop are not recorded.
func (p *Probe) Stop() []Sample {
	p.cancel()
	<-p.done
	return p.Samples()
}

// Last returns the most recent finished sample, and false when there is
// none yet.
func (p *Probe) Last() (Sample, bool) {
	s := p.Samples()
	if len(s) == 0 {
		return Sample{}, false
	}
	return s[len(s)-1], true
}
