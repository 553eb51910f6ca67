package bench

import (
	"context"
	"maps"
	"sync"
	"time"
)

// endpointClock times one Service's scale-up (attach) or scale-down (detach) per endpoint IP:
// when the bench's EndpointSlice informer first listed the IP (scale-up) or stopped listing it
// as serving (scale-down: gone or terminating), and when fakegce's NEGs first held it (or first
// no longer held it). It also keeps the last change of the slices' IP set and since when the
// NEGs have held exactly that set, for "last EndpointSlice change → every NEG exact".
//
// It is the churn's latencyTracker for changes that are not made one at a time by the bench:
// the pods' IPs are not known in advance, so every IP the slices or the NEGs show is a sample.
type endpointClock struct {
	svc     string
	attach  bool
	read    func() map[string]bool // the IPs the Service's NEGs hold now
	now     func() time.Time
	release func() // gives the slice tracker's listener back

	mu     sync.Mutex
	listed map[string]bool      // the slices' current serving IP set
	start  map[string]bool      // scale-down: the IPs in the NEGs when the clock started
	tSlice map[string]time.Time // IP → slices first listed it (attach) / stopped listing it (detach)
	tGCE   map[string]time.Time // IP → first poll that showed it attached / detached
	// lastChange is the last change of listed; exactSince is the first poll since then at
	// which the NEGs held exactly listed (zero while they do not).
	lastChange, exactSince time.Time
	polls                  int
	// changes are the times of every change of listed, in order.
	changes []time.Time
}

// quietGap is the gap after a change of the slices' IP set that QuietChanges counts: a rule
// that gets every change into GCE within one operation latency + 100 ms, whatever comes next,
// must start a call carrying a change within 100 ms of it (less the informer and sync delays)
// when no other change follows within that time — it cannot know that none will.
const quietGap = 100 * time.Millisecond

// newEndpointClock starts timing the Service s's NEGs (one per zone in fakegce); attach tells
// a scale-up from a scale-down. It takes over the slice tracker's listener until close.
func newEndpointClock(e *env, s svcRef, attach bool) *endpointClock {
	name := e.negName(s)
	read := func() map[string]bool {
		out := map[string]bool{}
		for _, z := range e.zones {
			eps, _ := e.st.GCE.NEGEndpoints(z, name)
			for _, ep := range eps {
				out[ep.IP] = true
			}
		}
		return out
	}
	c := newClock(s.key(), attach, e.slices.ips(s.key()), read, time.Now)
	e.slices.setListener(c.sliceChanged)
	c.release = func() { e.slices.setListener(nil) }
	return c
}

// newClock is an endpointClock for the Service key svc whose slices list listed now; read
// returns the IPs its NEGs hold.
func newClock(svc string, attach bool, listed map[string]bool, read func() map[string]bool, now func() time.Time) *endpointClock {
	c := &endpointClock{svc: svc, attach: attach, read: read, now: now, release: func() {}, listed: listed,
		start: map[string]bool{}, tSlice: map[string]time.Time{}, tGCE: map[string]time.Time{}}
	if !attach {
		c.start = read()
	}
	return c
}

func (c *endpointClock) close() { c.release() }

func (c *endpointClock) sliceChanged(svc string, ips map[string]bool, at time.Time) {
	if svc != c.svc {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if maps.Equal(ips, c.listed) {
		return // a change that moves no endpoint in or out (e.g. readiness)
	}
	c.lastChange, c.exactSince = at, time.Time{}
	c.changes = append(c.changes, at)
	if c.attach {
		for ip := range ips {
			if _, seen := c.tSlice[ip]; !seen && !c.listed[ip] {
				c.tSlice[ip] = at
			}
		}
	} else {
		for ip := range c.listed {
			if _, seen := c.tSlice[ip]; !seen && !ips[ip] {
				c.tSlice[ip] = at
			}
		}
	}
	c.listed = ips
}

// run polls the NEGs every interval until ctx ends.
func (c *endpointClock) run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, c.poll)
}

func (c *endpointClock) poll() {
	have := c.read()
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polls++
	if c.attach {
		for ip := range have {
			if _, seen := c.tGCE[ip]; !seen {
				c.tGCE[ip] = now
			}
		}
	} else {
		for ip := range c.start {
			if _, seen := c.tGCE[ip]; !seen && !have[ip] {
				c.tGCE[ip] = now
			}
		}
	}
	switch {
	case !maps.Equal(have, c.listed):
		c.exactSince = time.Time{}
	case c.exactSince.IsZero():
		// Not before the change it is exact for: the controller's informer may be ahead of
		// the bench's, so the NEGs can match a set the bench saw after this poll's read.
		c.exactSince = now
		if now.Before(c.lastChange) {
			c.exactSince = c.lastChange
		}
	}
}

// exact reports whether the last poll found the NEGs holding exactly the listed IPs.
func (c *endpointClock) exact() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.exactSince.IsZero()
}

// clockSummary is what an endpointClock measured.
type clockSummary struct {
	// PerEndpoint: EndpointSlice lists the endpoint → attached (scale-up), or stops listing it
	// → detached (scale-down); IPs not yet attached/detached at the end are censored samples.
	PerEndpoint Percentiles `json:"perEndpoint"`
	// NoSlice counts IPs that reached GCE's side without the bench's informer ever seeing the
	// slice change (not sampled); Negative counts samples where it saw the slice after the NEGs
	// showed the change (informer skew), counted as 0.
	NoSlice  int `json:"noSlice,omitempty"`
	Negative int `json:"negative,omitempty"`
	// LastChange is the last change of the slices' IP set; LastToExact is from it to the first
	// poll at which every NEG held exactly that set (negative: not exact when the clock ended).
	LastChange  time.Time `json:"-"`
	LastToExact float64   `json:"lastSliceChangeToExactSeconds"`
	Polls       int       `json:"polls"`
	// Changes counts the changes of the slices' IP set; QuietChanges those followed by at
	// least quietGap without another (the last one included): a lower bound on the calls of
	// any rule that gets every change out within one operation latency + 100 ms.
	Changes      int `json:"sliceChanges"`
	QuietChanges int `json:"quietSliceChanges"`
}

// summary computes the distributions; end is when observation stopped (for censored samples).
func (c *endpointClock) summary(end time.Time) clockSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := clockSummary{LastChange: c.lastChange, LastToExact: -1, Polls: c.polls, Changes: len(c.changes)}
	for i, at := range c.changes {
		if i == len(c.changes)-1 || c.changes[i+1].Sub(at) >= quietGap {
			s.QuietChanges++
		}
	}
	var d []sample
	for ip, ts := range c.tSlice {
		tg, ok := c.tGCE[ip]
		if !ok {
			d = append(d, sample{end.Sub(ts), true})
			continue
		}
		x := tg.Sub(ts)
		if x < 0 {
			s.Negative++
			x = 0
		}
		d = append(d, sample{x, false})
	}
	for ip := range c.tGCE {
		if _, ok := c.tSlice[ip]; !ok {
			s.NoSlice++
		}
	}
	s.PerEndpoint = percentiles(d)
	if !c.exactSince.IsZero() && !c.lastChange.IsZero() {
		s.LastToExact = round(c.exactSince.Sub(c.lastChange).Seconds(), 3)
	}
	return s
}
