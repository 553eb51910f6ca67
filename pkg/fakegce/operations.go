package fakegce

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Bounds on what the operation store remembers. GCE documents neither; these are the
// emulator's choice [unverified against real GCE].
const (
	// maxOperations is how many operations are kept for get/wait; the oldest DONE ones are
	// forgotten first.
	maxOperations = 100000
	// requestIDTTL and maxRequestIDs bound requestId de-duplication: a retried mutation with a
	// requestId seen within the last hour (and among the last 100,000) returns the original
	// operation and changes nothing.
	requestIDTTL  = time.Hour
	maxRequestIDs = 100000
)

// opSpec describes the operation a mutation starts.
type opSpec struct {
	opType       string // operationType: insert, delete, update, patch, attachNetworkEndpoints, ...
	zone, region string // scope; both empty = global
	target       string // targetLink
	targetID     uint64
	// apply performs the mutation. It runs once, with s.mu held for writing, when the operation
	// becomes DONE; an error fails the operation instead (the effect must then be absent).
	apply func(now time.Time) *apiError
}

// operation is one Compute operation. Its fields are guarded by opStore.mu, except done, which
// is closed (once) when the operation becomes DONE.
type operation struct {
	key   string // scope path + "/operations/" + name
	op    compute.Operation
	done  chan struct{}
	apply func(now time.Time) *apiError
	fail  *Fault // injected failure (FailOperation) or nil
	due   time.Time
	seq   uint64
	index int // position in opStore.pending
}

type requestEntry struct {
	op *operation
	at time.Time
}

type requestRef struct {
	id string
	op *operation
}

// opStore holds operations and completes them in order of due time (then creation), from one
// goroutine, so two operations with the same latency finish in the order they were started.
type opStore struct {
	s       *Server
	mu      sync.Mutex
	keys    map[string]*operation
	fifo    []string // operation keys, oldest first, for eviction
	reqs    map[string]requestEntry
	rfifo   []requestRef // requestIds, oldest first
	pending opHeap
	seq     uint64
	wake    chan struct{}
}

func newOpStore(s *Server) *opStore {
	return &opStore{s: s, keys: map[string]*operation{}, reqs: map[string]requestEntry{}, wake: make(chan struct{}, 1)}
}

// startOp creates the operation of a mutation that passed validation. With zero latency the
// operation completes (and the effect is applied) before startOp returns. With a requestId that
// is already known (a concurrent retry), the original operation is returned and spec.apply is
// never run.
func (s *Server) startOp(c *call, spec opSpec) (*compute.Operation, *apiError) {
	now := time.Now()
	name := fmt.Sprintf("operation-%d-%013x-%08x-%08x", now.UnixMilli(), rand.Uint64()>>12, rand.Uint32(), rand.Uint32())
	o := &operation{done: make(chan struct{}), apply: spec.apply, due: now.Add(s.cfg.OperationLatency)}
	var scope []string
	o.op = compute.Operation{
		Kind: "compute#operation", Id: newID(), Name: name, OperationType: spec.opType,
		Status: "RUNNING", TargetLink: spec.target, TargetId: spec.targetID,
		InsertTime: timestamp(now), StartTime: timestamp(now), CreationTimestamp: timestamp(now),
		User: "fakegce@" + s.cfg.Project + ".iam.gserviceaccount.com", ClientOperationId: c.requestID,
		ForceSendFields: []string{"Progress"},
	}
	switch {
	case spec.zone != "":
		o.op.Zone = s.zoneLink(spec.zone)
		scope = []string{"zones", spec.zone}
	case spec.region != "":
		o.op.Region = s.regionLink(spec.region)
		scope = []string{"regions", spec.region}
	default:
		scope = []string{"global"}
	}
	o.key = s.rel(append(scope, "operations", name)...)
	o.op.SelfLink = linkPrefix + o.key
	if f := c.opFault; f != nil && f.FailOperation {
		o.fail = f
	}
	neverFinish := c.opFault != nil && c.opFault.NeverFinish

	st := s.ops
	st.mu.Lock()
	if c.requestID != "" {
		if e, ok := st.reqs[c.requestID]; ok && now.Sub(e.at) < requestIDTTL {
			snap := e.op.op
			st.mu.Unlock()
			return &snap, nil
		}
	}
	st.add(o, c.requestID, now)
	inline := !neverFinish && s.cfg.OperationLatency <= 0
	if !neverFinish && !inline {
		st.seq++
		o.seq = st.seq
		heap.Push(&st.pending, o)
	}
	snap := o.op
	st.mu.Unlock()

	switch {
	case inline:
		s.finishOp(o)
		snap = s.ops.snapshot(o)
	case !neverFinish:
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
	return &snap, nil
}

// add registers o (and its requestId), evicting the oldest entries beyond the bounds. Called
// with st.mu held.
func (st *opStore) add(o *operation, requestID string, now time.Time) {
	st.keys[o.key] = o
	st.fifo = append(st.fifo, o.key)
	for n := len(st.fifo); len(st.keys) > maxOperations && n > 0; n-- {
		k := st.fifo[0]
		st.fifo = st.fifo[1:]
		if old, ok := st.keys[k]; ok && old.op.Status != "DONE" {
			st.fifo = append(st.fifo, k) // never evict a running operation
			continue
		}
		delete(st.keys, k)
	}
	if requestID == "" {
		return
	}
	st.reqs[requestID] = requestEntry{op: o, at: now}
	st.rfifo = append(st.rfifo, requestRef{requestID, o})
	for len(st.rfifo) > 0 {
		ref := st.rfifo[0]
		e, ok := st.reqs[ref.id]
		live := ok && e.op == ref.op
		if live && len(st.reqs) <= maxRequestIDs && now.Sub(e.at) < requestIDTTL {
			break
		}
		st.rfifo = st.rfifo[1:]
		if live {
			delete(st.reqs, ref.id)
		}
	}
}

// byRequestID returns the operation started by a mutation with this requestId, if remembered.
func (st *opStore) byRequestID(id string) *compute.Operation {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.reqs[id]
	if !ok || time.Since(e.at) >= requestIDTTL {
		return nil
	}
	snap := e.op.op
	return &snap
}

func (st *opStore) snapshot(o *operation) compute.Operation {
	st.mu.Lock()
	defer st.mu.Unlock()
	return o.op
}

// finishOp applies the operation's effect (unless it is an injected failure) and marks it DONE.
func (s *Server) finishOp(o *operation) {
	now := time.Now()
	var e *opErr
	if o.fail != nil {
		e = injectedOpErr(o.fail)
	} else {
		s.mu.Lock()
		err := o.apply(now)
		s.mu.Unlock()
		if err != nil {
			e = &opErr{code: err.opCode(), status: err.code, message: err.message}
		}
		s.healthChanged()
	}
	st := s.ops
	st.mu.Lock()
	defer st.mu.Unlock()
	o.op.Status, o.op.Progress, o.op.EndTime = "DONE", 100, timestamp(now)
	if e != nil {
		o.op.Error = &compute.OperationError{Errors: []*compute.OperationErrorErrors{{Code: e.code, Message: e.message}}}
		o.op.HttpErrorStatusCode = int64(e.status)
		o.op.HttpErrorMessage = httpErrorMessage(e.status)
	}
	close(o.done)
}

// opErr is the error a failed operation carries.
type opErr struct {
	code    string
	status  int
	message string
}

func injectedOpErr(f *Fault) *opErr {
	e := &opErr{code: f.OperationErrorCode, status: f.Code, message: f.Message}
	if e.code == "" {
		e.code = "INTERNAL_ERROR"
	}
	if e.status == 0 {
		e.status = opStatusFor(e.code)
	}
	if e.message == "" {
		e.message = "fakegce: injected operation failure " + e.code
	}
	return e
}

// run completes due operations until ctx is canceled.
func (st *opStore) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		st.mu.Lock()
		now := time.Now()
		var ready []*operation
		for st.pending.Len() > 0 && !st.pending[0].due.After(now) {
			ready = append(ready, heap.Pop(&st.pending).(*operation))
		}
		next := time.Hour
		if st.pending.Len() > 0 {
			next = st.pending[0].due.Sub(now)
		}
		st.mu.Unlock()
		if len(ready) > 0 {
			for _, o := range ready {
				if ctx.Err() != nil {
					return
				}
				st.s.finishOp(o)
			}
			continue
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-st.wake:
		case <-timer.C:
		}
	}
}

// opHeap orders pending operations by due time, then creation.
type opHeap []*operation

func (h opHeap) Len() int { return len(h) }
func (h opHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h opHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *opHeap) Push(x any)   { o := x.(*operation); o.index = len(*h); *h = append(*h, o) }
func (h *opHeap) Pop() any {
	old := *h
	o := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return o
}

func (s *Server) operationRoutes() {
	type scope struct{ prefix, kind string }
	for _, sc := range []scope{
		{"zones/{zone}/operations/{op}", "compute.zoneOperations"},
		{"regions/{region}/operations/{op}", "compute.regionOperations"},
		{"global/operations/{op}", "compute.globalOperations"},
	} {
		s.handle(http.MethodGet, sc.prefix, sc.kind+".get", s.getOp)
		s.handle(http.MethodPost, sc.prefix+"/wait", sc.kind+".wait", s.waitOp)
	}
}

// opKey is the key of the operation a get/wait request names.
func (s *Server) opKey(r *http.Request) string {
	switch {
	case r.PathValue("zone") != "":
		return s.rel("zones", r.PathValue("zone"), "operations", r.PathValue("op"))
	case r.PathValue("region") != "":
		return s.rel("regions", r.PathValue("region"), "operations", r.PathValue("op"))
	}
	return s.rel("global", "operations", r.PathValue("op"))
}

func (s *Server) lookupOp(r *http.Request) (*operation, *apiError) {
	key := s.opKey(r)
	s.ops.mu.Lock()
	o := s.ops.keys[key]
	s.ops.mu.Unlock()
	if o == nil {
		return nil, errNotFound(key)
	}
	return o, nil
}

func (s *Server) getOp(c *call) (any, *apiError) {
	o, err := s.lookupOp(c.r)
	if err != nil {
		return nil, err
	}
	snap := s.ops.snapshot(o)
	return &snap, nil
}

// waitOp blocks until the operation is DONE, OperationWaitTimeout passed (2 minutes by default,
// like GCE, which may also return early and not DONE), the request is canceled or the server
// closes; it then answers the operation as it is.
func (s *Server) waitOp(c *call) (any, *apiError) {
	o, err := s.lookupOp(c.r)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(s.cfg.OperationWaitTimeout)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
	case <-c.r.Context().Done():
	case <-s.ctx.Done():
	}
	snap := s.ops.snapshot(o)
	return &snap, nil
}

// newID returns a random numeric resource id as GCE's (19 digits or so, below 2^63).
func newID() uint64 { return rand.Uint64()>>1 | 1<<60 }
