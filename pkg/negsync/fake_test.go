package negsync

import (
	"context"
	"net/http"
	"sync"

	"google.golang.org/api/googleapi"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// fakeCloud is the in-memory Cloud of the deterministic tier: set semantics per NEG, every
// call recorded, the next errors settable, endpoints GCE would reject as invalid, and an
// optional gate that holds every call until the test lets it through. Behaviour of GCE itself
// (operations, limits, validation) is tested against fakegce in pkg/gce and pkg/controller;
// this fake only has to be a faithful set.
type fakeCloud struct {
	mu    sync.Mutex
	negs  map[neg.Ref]neg.EndpointSet
	calls []fakeCall
	// errs are returned by the next calls, in order (nil entries succeed).
	errs []error
	// invalid endpoints make any attach that contains them fail as invalid, as GCE does.
	invalid neg.EndpointSet
	// gate, when set, holds every attach and detach until a value is received (or it is
	// closed); listGate likewise holds listings, which read the NEG when they start.
	gate, listGate chan struct{}
	// entered, when set, receives the method of every call as it starts.
	entered chan string
}

type fakeCall struct {
	method string // list, attach, detach
	ref    neg.Ref
	n      int
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{negs: map[neg.Ref]neg.EndpointSet{}, invalid: neg.NewEndpointSet()}
}

// failNext makes the next calls fail with errs, in order.
func (f *fakeCloud) failNext(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, errs...)
}

// count returns how many calls of method were made.
func (f *fakeCloud) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.method == method {
			n++
		}
	}
	return n
}

// set returns a copy of the endpoints of ref.
func (f *fakeCloud) set(ref neg.Ref) neg.EndpointSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := neg.NewEndpointSet()
	for e := range f.negs[ref] {
		out.Insert(e)
	}
	return out
}

// put replaces the endpoints of ref, as a change made outside the controller.
func (f *fakeCloud) put(ref neg.Ref, eps ...neg.Endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.negs[ref] = neg.NewEndpointSet(eps...)
}

// begin records a call and returns the gate it must wait for and the error queued for it.
func (f *fakeCloud) begin(method string, ref neg.Ref, n int) (gate chan struct{}, err error) {
	f.calls = append(f.calls, fakeCall{method: method, ref: ref, n: n})
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	if f.entered != nil {
		f.entered <- method
	}
	if method == "list" {
		return f.listGate, err
	}
	return f.gate, err
}

func (f *fakeCloud) ListNetworkEndpoints(_ context.Context, zone, name string, _ bool) ([]gce.EndpointHealth, error) {
	ref := neg.Ref{Zone: zone, Name: name}
	f.mu.Lock()
	gate, err := f.begin("list", ref, 0)
	set, ok := f.negs[ref]
	out := make([]gce.EndpointHealth, 0, len(set))
	for e := range set {
		out = append(out, gce.EndpointHealth{Endpoint: e})
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errNotFound
	}
	return out, nil
}

func (f *fakeCloud) AttachNetworkEndpoints(_ context.Context, zone, name string, eps []neg.Endpoint) error {
	return f.mutate("attach", neg.Ref{Zone: zone, Name: name}, eps)
}

func (f *fakeCloud) DetachNetworkEndpoints(_ context.Context, zone, name string, eps []neg.Endpoint) error {
	return f.mutate("detach", neg.Ref{Zone: zone, Name: name}, eps)
}

func (f *fakeCloud) mutate(method string, ref neg.Ref, eps []neg.Endpoint) error {
	f.mu.Lock()
	gate, err := f.begin(method, ref, len(eps))
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	set, ok := f.negs[ref]
	if !ok {
		return errNotFound
	}
	for _, e := range eps {
		if method == "attach" && f.invalid.Has(e) {
			return errInvalid
		}
	}
	for _, e := range eps {
		if method == "attach" {
			set.Insert(e)
		} else {
			delete(set, e)
		}
	}
	return nil
}

var (
	errNotFound = &googleapi.Error{Code: http.StatusNotFound, Errors: []googleapi.ErrorItem{{Reason: "notFound"}}}
	errInvalid  = &googleapi.Error{Code: http.StatusBadRequest, Errors: []googleapi.ErrorItem{{Reason: "invalid"}}}
	errInUse    = &googleapi.Error{Code: http.StatusBadRequest, Errors: []googleapi.ErrorItem{{Reason: "resourceInUseByAnotherResource"}}}
	errServer   = &googleapi.Error{Code: http.StatusServiceUnavailable, Errors: []googleapi.ErrorItem{{Reason: "backendError"}}}
)
