package fakegce

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is an injected misbehaviour of one Compute method (or of all, Method "*"). A fault
// fires on a matching request with probability Rate (0 means always), at most Count times
// (0 = unlimited); then it is removed. A firing fault:
//   - waits Latency before the request is served (any method);
//   - with FailOperation (mutations only): the request succeeds but its operation ends DONE with
//     error code OperationErrorCode (default INTERNAL_ERROR) and httpErrorStatusCode Code (default
//     per code, e.g. 403 for QUOTA_EXCEEDED); the mutation has no effect;
//   - with NeverFinish (mutations only): the operation stays RUNNING forever, without effect;
//   - otherwise, with Code set: the request fails synchronously with HTTP Code and reason Reason
//     (default per code: 429 rateLimitExceeded, 503 backendError, ...), message Message.
type Fault struct {
	Method             string        `json:"method"`
	Code               int           `json:"code,omitempty"`
	Reason             string        `json:"reason,omitempty"`
	Message            string        `json:"message,omitempty"`
	Rate               float64       `json:"rate,omitempty"`
	Count              int           `json:"count,omitempty"`
	Latency            time.Duration `json:"-"`
	FailOperation      bool          `json:"failOperation,omitempty"`
	OperationErrorCode string        `json:"operationErrorCode,omitempty"`
	NeverFinish        bool          `json:"neverFinish,omitempty"`
}

// MarshalJSON renders Latency as a Go duration string ("250ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	j := struct {
		plain
		Latency string `json:"latency,omitempty"`
	}{plain: plain(f)}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON accepts Latency as a Go duration string ("250ms").
func (f *Fault) UnmarshalJSON(data []byte) error {
	type plain Fault
	var j struct {
		plain
		Latency string `json:"latency,omitempty"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Fault(j.plain)
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
	}
	return nil
}

func (f Fault) opKind() bool { return f.FailOperation || f.NeverFinish }

// validate rejects faults that would do nothing or cannot be served.
func (f Fault) validate() error {
	switch {
	case f.Method == "":
		return fmt.Errorf("fault needs a method (discovery id such as compute.networkEndpointGroups.attachNetworkEndpoints, or *)")
	case f.Method != "*" && !strings.HasPrefix(f.Method, "compute."):
		return fmt.Errorf("method %q is not a Compute discovery method id", f.Method)
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("rate %v not in [0,1]", f.Rate)
	case f.Count < 0 || f.Latency < 0:
		return fmt.Errorf("count and latency must not be negative")
	case f.Code != 0 && (f.Code < 400 || f.Code > 599):
		return fmt.Errorf("code %d is not an HTTP error status", f.Code)
	case f.Code == 0 && f.Latency == 0 && !f.opKind():
		return fmt.Errorf("fault does nothing: set code, latency, failOperation or neverFinish")
	}
	return nil
}

type faultRule struct {
	f         Fault
	remaining int // -1 = unlimited
}

// faultSet holds the injected faults.
type faultSet struct {
	mu    sync.Mutex
	rules []*faultRule
	rng   *rand.Rand
}

func (fs *faultSet) init() { fs.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

func (fs *faultSet) add(f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r := &faultRule{f: f, remaining: f.Count}
	if f.Count == 0 {
		r.remaining = -1
	}
	fs.rules = append(fs.rules, r)
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rules = nil
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.rules))
	for _, r := range fs.rules {
		f := r.f
		if r.remaining >= 0 {
			f.Count = r.remaining
		}
		out = append(out, f)
	}
	return out
}

// faultEffect is what the faults that fired on one request add up to.
type faultEffect struct {
	latency time.Duration
	err     *apiError
	op      *Fault
}

// roll decides which faults fire on one request of method.
func (fs *faultSet) roll(method string, mutating bool) faultEffect {
	var eff faultEffect
	fs.mu.Lock()
	defer fs.mu.Unlock()
	kept := fs.rules[:0]
	for _, r := range fs.rules {
		fired := (r.f.Method == "*" || r.f.Method == method) && (mutating || !r.f.opKind()) &&
			(r.f.Rate <= 0 || r.f.Rate >= 1 || fs.rng.Float64() < r.f.Rate)
		if fired {
			eff.latency += r.f.Latency
			switch {
			case r.f.opKind():
				if eff.op == nil {
					f := r.f
					eff.op = &f
				}
			case r.f.Code != 0 && eff.err == nil:
				eff.err = injectedErr(r.f)
			}
			if r.remaining > 0 {
				r.remaining--
			}
		}
		if r.remaining != 0 {
			kept = append(kept, r)
		}
	}
	clear(fs.rules[len(kept):])
	fs.rules = kept
	return eff
}

func injectedErr(f Fault) *apiError {
	e := &apiError{code: f.Code, reason: f.Reason, message: f.Message}
	if e.reason == "" {
		e.reason = defaultReason(f.Code)
	}
	if e.message == "" {
		e.message = fmt.Sprintf("fakegce: injected error %d %s on %s", f.Code, e.reason, f.Method)
		if e.reason == reasonRateLimit {
			e.message = "Quota exceeded for quota group 'default' and limit 'Queries per 100 seconds' of service 'compute.googleapis.com' (fakegce injected)"
		}
	}
	return e
}

// RequestRecord is one entry of the request log.
type RequestRecord struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"` // discovery id, "metadata" or "fakegce.unknownPath"
	HTTPMethod string    `json:"httpMethod"`
	Path       string    `json:"path"`
	Query      string    `json:"query,omitempty"`
	RequestID  string    `json:"requestId,omitempty"`
	// Authorization is the Authorization header: verbatim when it carries the fake metadata
	// server's token ("Bearer fake-token"), otherwise only its scheme ("Bearer <redacted>").
	Authorization string `json:"authorization,omitempty"`
	// Principal is who the bearer token authenticated, when Config.Auth requires tokens:
	// "serviceAccount:EMAIL" (IAM Credentials), "federated:AUDIENCE" (STS token used directly),
	// "metadata:default" (metadata server token).
	Principal string `json:"principal,omitempty"`
	Status    int    `json:"status"`
}

// observer keeps per-method counters and a bounded request log.
type observer struct {
	mu     sync.Mutex
	counts map[string]int
	log    []*RequestRecord // ring buffer
	next   int
	full   bool
}

func newObserver(size int) *observer {
	return &observer{counts: map[string]int{}, log: make([]*RequestRecord, size)}
}

// begin counts and logs a request; the returned record's status is set by finish.
func (o *observer) begin(method string, r *http.Request, requestID string) *RequestRecord {
	rec := &RequestRecord{Time: time.Now(), Method: method, HTTPMethod: r.Method, Path: r.URL.Path,
		Query: r.URL.RawQuery, RequestID: requestID, Authorization: redactAuth(r.Header.Get("Authorization"))}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[method]++
	o.log[o.next] = rec
	o.next = (o.next + 1) % len(o.log)
	o.full = o.full || o.next == 0
	return rec
}

func (o *observer) setPrincipal(rec *RequestRecord, p string) {
	if p == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	rec.Principal = p
}

func (o *observer) finish(rec *RequestRecord, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rec.Status = status
}

func redactAuth(h string) string {
	if h == "" || h == "Bearer "+fakeToken {
		return h
	}
	scheme, _, _ := strings.Cut(h, " ")
	return scheme + " <redacted>"
}

func (o *observer) snapshotCounts() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.counts))
	for k, v := range o.counts {
		out[k] = v
	}
	return out
}

func (o *observer) records() []RequestRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []RequestRecord
	start, n := 0, o.next
	if o.full {
		start, n = o.next, len(o.log)
	}
	for i := 0; i < n; i++ {
		out = append(out, *o.log[(start+i)%len(o.log)])
	}
	return out
}

func (o *observer) reset(counts, log bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if counts {
		o.counts = map[string]int{}
	}
	if log {
		clear(o.log)
		o.next, o.full = 0, false
	}
}
