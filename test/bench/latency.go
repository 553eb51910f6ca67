package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// change is one endpoint the churn added to or removed from a Service.
type change struct {
	svc    string // Service key
	negRef string // zone + "/" + NEG name
	zone   string
	negNm  string
	ep     neg.Endpoint
	attach bool
	pod    *churnPod
	// tPod: the pod label patch returned; tSlice: the bench's EndpointSlice informer saw the
	// endpoint appear/disappear; tGCE: the NEG in fakegce shows it (operation DONE).
	tPod, tSlice, tGCE time.Time
}

// latencyTracker timestamps changes as the EndpointSlices and then fakegce reflect them.
type latencyTracker struct {
	e        *env
	interval time.Duration
	onDone   func(c *change)

	mu         sync.Mutex
	pending    map[string][]*change // Service key → changes not yet seen in GCE
	done       []*change
	maxPending int
}

func newLatencyTracker(e *env, interval time.Duration, onDone func(c *change)) *latencyTracker {
	t := &latencyTracker{e: e, interval: interval, onDone: onDone, pending: map[string][]*change{}}
	e.slices.setListener(t.sliceChanged)
	return t
}

func (t *latencyTracker) close() { t.e.slices.setListener(nil) }

// add registers c before the pod is patched (so no slice event can be missed).
func (t *latencyTracker) add(c *change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[c.svc] = append(t.pending[c.svc], c)
}

// patched records when the pod patch returned (or drops c if it failed).
func (t *latencyTracker) patched(c *change, at time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		c.tPod = at
		return
	}
	list := t.pending[c.svc]
	for i, x := range list {
		if x == c {
			t.pending[c.svc] = append(list[:i], list[i+1:]...)
			break
		}
	}
}

func (t *latencyTracker) sliceChanged(svc string, ips map[string]bool, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.pending[svc] {
		if c.tSlice.IsZero() && ips[c.ep.IP] == c.attach {
			c.tSlice = at
		}
	}
}

// run polls fakegce for the NEGs of pending changes until ctx ends.
func (t *latencyTracker) run(ctx context.Context) { every(ctx, t.interval, t.pollOnce) }

func (t *latencyTracker) pollOnce() {
	t.mu.Lock()
	byNEG := map[string][]*change{}
	n := 0
	for _, list := range t.pending {
		for _, c := range list {
			if !c.tPod.IsZero() {
				byNEG[c.negRef] = append(byNEG[c.negRef], c)
				n++
			}
		}
	}
	t.maxPending = max(t.maxPending, n)
	t.mu.Unlock()
	var finished []*change
	for _, list := range byNEG {
		eps, ok := t.e.st.GCE.NEGEndpoints(list[0].zone, list[0].negNm)
		now := time.Now()
		have := neg.NewEndpointSet(eps...)
		for _, c := range list {
			if ok && have.Has(c.ep) == c.attach || !ok && !c.attach {
				c.tGCE = now
				finished = append(finished, c)
			}
		}
	}
	if len(finished) == 0 {
		return
	}
	t.mu.Lock()
	for _, c := range finished {
		list := t.pending[c.svc]
		for i, x := range list {
			if x == c {
				t.pending[c.svc] = append(list[:i], list[i+1:]...)
				break
			}
		}
		t.done = append(t.done, c)
	}
	t.mu.Unlock()
	for _, c := range finished {
		t.onDone(c)
	}
}

func (t *latencyTracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.pending {
		n += len(l)
	}
	return n
}

// Percentiles of a latency distribution, in seconds. Changes still not in GCE when the
// observation ended are included as censored samples (their latency is at least the time they
// had waited); a percentile that falls on one is a lower bound, listed in LowerBound.
type Percentiles struct {
	N          int      `json:"n"`
	Censored   int      `json:"censored,omitempty"`
	P50        float64  `json:"p50"`
	P95        float64  `json:"p95"`
	P99        float64  `json:"p99"`
	Max        float64  `json:"max"`
	LowerBound []string `json:"lowerBound,omitempty"`
}

type sample struct {
	d        time.Duration
	censored bool
}

func percentiles(in []sample) Percentiles {
	if len(in) == 0 {
		return Percentiles{}
	}
	d := append([]sample(nil), in...)
	sort.Slice(d, func(i, j int) bool { return d[i].d < d[j].d })
	p := Percentiles{N: len(d)}
	at := func(name string, q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1 // nearest rank
		i = min(max(i, 0), len(d)-1)
		if d[i].censored {
			p.LowerBound = append(p.LowerBound, name)
		}
		return round(d[i].d.Seconds(), 3)
	}
	for _, x := range d {
		if x.censored {
			p.Censored++
		}
	}
	p.P50, p.P95, p.P99, p.Max = at("p50", 0.50), at("p95", 0.95), at("p99", 0.99), at("max", 1)
	return p
}

// fmtP renders one percentile, with "≥" when it is a lower bound.
func (p Percentiles) fmtP(name string, v float64) string {
	for _, n := range p.LowerBound {
		if n == name {
			return fmt.Sprintf("≥ %.3f", v)
		}
	}
	return fmt.Sprintf("%.3f", v)
}

// Latencies summarises the changes.
type Latencies struct {
	SliceToGCE       Percentiles `json:"sliceToGce"`
	SliceToGCEAttach Percentiles `json:"sliceToGceAttach"`
	SliceToGCEDetach Percentiles `json:"sliceToGceDetach"`
	PodToGCE         Percentiles `json:"podToGce"`
	PodToSlice       Percentiles `json:"podToSlice"`
	// Unobserved changes were not yet in GCE when observation ended (censored samples);
	// NoSlice ones were never seen in the bench's EndpointSlice informer (excluded from the
	// slice-based distributions).
	Unobserved int `json:"unobserved"`
	NoSlice    int `json:"noSlice"`
	// Negative counts slice→GCE samples where the bench's informer saw the slice after the
	// GCE change was visible (informer skew); they are counted as 0.
	Negative int `json:"negative"`
	// Gates are the readiness gate flips of replaced gated pods (churn only).
	Gates *GateLatencies `json:"readinessGates,omitempty"`
	// PerEndpoint are big-service's per-endpoint latencies, one per phase; a Result that has
	// them has none of the churn's distributions above.
	PerEndpoint []StepLatency `json:"perEndpoint,omitempty"`
}

// StepLatency is one per-endpoint latency distribution of a scale step.
type StepLatency struct {
	What string      `json:"what"`
	P    Percentiles `json:"percentiles"`
}

// summary computes the distributions; end is when observation stopped (for censored samples).
func (t *latencyTracker) summary(end time.Time) Latencies {
	t.mu.Lock()
	defer t.mu.Unlock()
	var l Latencies
	var s2g, s2gA, s2gD, p2g, p2s []sample
	add := func(c *change, gce time.Time, censored bool) {
		p2g = append(p2g, sample{gce.Sub(c.tPod), censored})
		if c.tSlice.IsZero() {
			l.NoSlice++
			return
		}
		p2s = append(p2s, sample{c.tSlice.Sub(c.tPod), false})
		d := gce.Sub(c.tSlice)
		if d < 0 {
			l.Negative++
			d = 0
		}
		x := sample{d, censored}
		s2g = append(s2g, x)
		if c.attach {
			s2gA = append(s2gA, x)
		} else {
			s2gD = append(s2gD, x)
		}
	}
	for _, c := range t.done {
		add(c, c.tGCE, false)
	}
	for _, list := range t.pending {
		for _, c := range list {
			if c.tPod.IsZero() {
				continue
			}
			l.Unobserved++
			add(c, end, true)
		}
	}
	l.SliceToGCE, l.SliceToGCEAttach, l.SliceToGCEDetach = percentiles(s2g), percentiles(s2gA), percentiles(s2gD)
	l.PodToGCE, l.PodToSlice = percentiles(p2g), percentiles(p2s)
	return l
}
