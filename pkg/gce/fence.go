package gce

import (
	"context"
	"fmt"
	"sync"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Fence is a switch that stops every Compute Engine mutation made through the decorators its
// Cloud and BackendServices methods return. It starts open; Close shuts it for good
// (there is no reopening: the process must be restarted). Safe for concurrent use.
type Fence struct {
	mu     sync.Mutex
	reason string // empty while open
}

// NewFence returns an open fence.
func NewFence() *Fence { return &Fence{} }

// Close stops mutations with reason (a sentence for logs, errors and /readyz). It reports
// whether this call closed the fence (false if it was already closed; the first reason stays).
func (f *Fence) Close(reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason != "" {
		return false
	}
	if reason == "" {
		reason = "mutations stopped"
	}
	f.reason = reason
	return true
}

// Err returns nil while the fence is open, else a *FencedError with the reason.
func (f *Fence) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		return nil
	}
	return &FencedError{Reason: f.reason}
}

// refuse returns the error of a mutating call while closed, else nil.
func (f *Fence) refuse(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		return nil
	}
	return &FencedError{Method: method, Reason: f.reason}
}

// FencedError is returned, instead of making the call, by the mutating methods of a Fence's
// Cloud or BackendServices once the fence is closed. Classify maps it to Fenced (RetryLater):
// the request is fine, but nothing may change GCE until an operator acts.
type FencedError struct {
	// Method is the API method refused, e.g. networkEndpointGroups.attachNetworkEndpoints.
	Method string
	// Reason is why the fence was closed.
	Reason string
}

func (e *FencedError) Error() string {
	if e.Method == "" {
		return "Compute Engine mutations are stopped: " + e.Reason
	}
	return fmt.Sprintf("%s not called: Compute Engine mutations are stopped: %s", e.Method, e.Reason)
}

// Cloud wraps inner so that its mutations (CreateNEG, DeleteNEG, AttachNetworkEndpoints,
// DetachNetworkEndpoints) return a *FencedError without any request once f is closed; before
// that, and for reads always, every call goes to inner unchanged.
//
// Like DryRun, the wrapper does not embed Cloud: a method added to Cloud fails to compile here
// until it is decided whether it mutates.
func (f *Fence) Cloud(inner Cloud) Cloud { return &fenced{inner: inner, fence: f} }

type fenced struct {
	inner Cloud
	fence *Fence
}

var _ Cloud = (*fenced)(nil)

func (c *fenced) Project() string { return c.inner.Project() }

func (c *fenced) GetNEG(ctx context.Context, zone, name string) (*NEG, error) {
	return c.inner.GetNEG(ctx, zone, name)
}

func (c *fenced) ListNEGs(ctx context.Context) ([]NEG, error) { return c.inner.ListNEGs(ctx) }

func (c *fenced) ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]EndpointHealth, error) {
	return c.inner.ListNetworkEndpoints(ctx, zone, name, withHealth)
}

func (c *fenced) CreateNEG(ctx context.Context, zone string, spec NEGSpec) (*NEG, error) {
	if err := c.fence.refuse("networkEndpointGroups.insert"); err != nil {
		return nil, err
	}
	return c.inner.CreateNEG(ctx, zone, spec)
}

func (c *fenced) DeleteNEG(ctx context.Context, zone, name string) error {
	if err := c.fence.refuse("networkEndpointGroups.delete"); err != nil {
		return err
	}
	return c.inner.DeleteNEG(ctx, zone, name)
}

func (c *fenced) AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	if err := c.fence.refuse("networkEndpointGroups.attachNetworkEndpoints"); err != nil {
		return err
	}
	return c.inner.AttachNetworkEndpoints(ctx, zone, name, eps)
}

func (c *fenced) DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	if err := c.fence.refuse("networkEndpointGroups.detachNetworkEndpoints"); err != nil {
		return err
	}
	return c.inner.DetachNetworkEndpoints(ctx, zone, name, eps)
}

// BackendServices wraps inner like Cloud: UpdateBackendService returns a *FencedError
// once f is closed; GetBackendService always goes to inner.
func (f *Fence) BackendServices(inner BackendServices) BackendServices {
	return &fencedBackends{inner: inner, fence: f}
}

type fencedBackends struct {
	inner BackendServices
	fence *Fence
}

var _ BackendServices = (*fencedBackends)(nil)

func (c *fencedBackends) GetBackendService(ctx context.Context, region, name string) (*BackendService, error) {
	return c.inner.GetBackendService(ctx, region, name)
}

func (c *fencedBackends) UpdateBackendService(ctx context.Context, region string, bs *BackendService) error {
	method := "backendServices.patch"
	if region != "" {
		method = "regionBackendServices.patch"
	}
	if err := c.fence.refuse(method); err != nil {
		return err
	}
	return c.inner.UpdateBackendService(ctx, region, bs)
}
