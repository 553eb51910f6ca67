package gce

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"google.golang.org/api/googleapi"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// DryRun wraps inner so that no mutation reaches GCE. Mutations (CreateNEG, DeleteNEG,
// AttachNetworkEndpoints, DetachNetworkEndpoints) are logged (klog, level 0, structured:
// method, zone, neg, endpoint count or NEG fields), reported to observe with the API method id
// (observe may be nil), and answered with success without any request. Reads (Project,
// GetNEG, ListNEGs, ListNetworkEndpoints) go to inner.
//
// The caller believes its own writes: the wrapper remembers what it pretended to do and
// overlays it on the reads — a NEG "created" is returned by GetNEG and ListNEGs (built from
// the spec: name, type, description, network and subnetwork as given, self link from
// inner.Project(), no ID) and lists the endpoints "attached" to it; a NEG "deleted" is
// NotFound; endpoints "attached" or "detached" in a real NEG are added to or removed from its
// listing. So a controller in dry run converges on what it would have done and then stays
// quiet, instead of repeating the same mutations: the log holds each would-be mutation once
// (until GCE itself changes).
//
// Every mutating method of Cloud is overridden here: the wrapper deliberately does not embed
// Cloud, so adding a method to Cloud fails to compile until its dry-run behaviour is decided.
func DryRun(inner Cloud, observe func(method string)) Cloud {
	if observe == nil {
		observe = func(string) {}
	}
	return &dryRun{inner: inner, observe: observe, created: map[neg.Ref]*NEG{}, deleted: map[neg.Ref]bool{},
		attached: map[neg.Ref]neg.EndpointSet{}, detached: map[neg.Ref]neg.EndpointSet{}}
}

type dryRun struct {
	inner   Cloud
	observe func(method string)

	mu       sync.Mutex
	created  map[neg.Ref]*NEG // pretended to exist (not in GCE)
	deleted  map[neg.Ref]bool // pretended gone (still in GCE)
	attached map[neg.Ref]neg.EndpointSet
	detached map[neg.Ref]neg.EndpointSet
}

var _ Cloud = (*dryRun)(nil)

// skip logs and counts one mutation that is not made.
func (d *dryRun) skip(ctx context.Context, method, zone, name string, kv ...any) {
	d.observe(method)
	klog.FromContext(ctx).Info("Dry run: not calling GCE", append([]any{"method", method, "zone", zone, "neg", name}, kv...)...)
}

func dryRunNotFound(ref neg.Ref) error {
	return &googleapi.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("NEG %s was deleted in dry run", ref),
		Errors: []googleapi.ErrorItem{{Reason: "notFound"}}}
}

// forget drops the endpoint overlay of ref. Callers hold mu.
func (d *dryRun) forget(ref neg.Ref) {
	delete(d.attached, ref)
	delete(d.detached, ref)
}

func (d *dryRun) Project() string { return d.inner.Project() }

func (d *dryRun) GetNEG(ctx context.Context, zone, name string) (*NEG, error) {
	ref := neg.Ref{Zone: zone, Name: name}
	d.mu.Lock()
	created, deleted := d.created[ref], d.deleted[ref]
	d.mu.Unlock()
	switch {
	case created != nil:
		n := *created
		return &n, nil
	case deleted:
		return nil, dryRunNotFound(ref)
	}
	return d.inner.GetNEG(ctx, zone, name)
}

func (d *dryRun) ListNEGs(ctx context.Context) ([]NEG, error) {
	negs, err := d.inner.ListNEGs(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := negs[:0]
	for _, n := range negs {
		ref := n.Ref()
		if !d.deleted[ref] && d.created[ref] == nil {
			// The pretended changes count in the size (the controller compares sizes with what
			// it believes attached): attached endpoints were absent, detached ones present, as
			// far as the last listing showed (see ListNetworkEndpoints).
			n.Size += int64(d.attached[ref].Len() - d.detached[ref].Len())
			out = append(out, n)
		}
	}
	for ref, n := range d.created {
		c := *n
		c.Size = int64(d.attached[ref].Len())
		out = append(out, c)
	}
	return out, nil
}

func (d *dryRun) ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]EndpointHealth, error) {
	ref := neg.Ref{Zone: zone, Name: name}
	d.mu.Lock()
	created, deleted := d.created[ref] != nil, d.deleted[ref]
	d.mu.Unlock()
	var listed []EndpointHealth
	switch {
	case deleted:
		return nil, dryRunNotFound(ref)
	case !created:
		var err error
		if listed, err = d.inner.ListNetworkEndpoints(ctx, zone, name, withHealth); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !created {
		d.prune(ref, listed)
	}
	out := make([]EndpointHealth, 0, len(listed)+d.attached[ref].Len())
	seen := neg.NewEndpointSet()
	for _, e := range listed {
		if !d.detached[ref].Has(e.Endpoint) {
			out = append(out, e)
			seen.Insert(e.Endpoint)
		}
	}
	for _, e := range d.attached[ref].Sorted() {
		if !seen.Has(e) {
			out = append(out, EndpointHealth{Endpoint: e})
		}
	}
	return out, nil
}

func (d *dryRun) CreateNEG(ctx context.Context, zone string, spec NEGSpec) (*NEG, error) {
	typ := spec.Type
	if typ == "" {
		typ = TypeGCEVMIPPort
	}
	if typ == TypeNonGCPPrivateIPPort && spec.Subnetwork != "" { // refused like Compute.CreateNEG
		return nil, fmt.Errorf("creating NEG %s/%s: %w (got %q)", zone, spec.Name, ErrHybridSubnetwork, spec.Subnetwork)
	}
	d.skip(ctx, "networkEndpointGroups.insert", zone, spec.Name, "type", typ, "network", spec.Network,
		"subnetwork", spec.Subnetwork, "description", spec.Description)
	n := &NEG{
		Name:        spec.Name,
		Zone:        zone,
		SelfLink:    NEGURL(d.inner.Project(), zone, spec.Name),
		Description: spec.Description,
		Type:        typ,
		Network:     spec.Network,
		Subnetwork:  spec.Subnetwork,
		Annotations: spec.Annotations,
	}
	ref := neg.Ref{Zone: zone, Name: spec.Name}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created[ref] = n
	delete(d.deleted, ref)
	d.forget(ref)
	out := *n
	return &out, nil
}

func (d *dryRun) DeleteNEG(ctx context.Context, zone, name string) error {
	d.skip(ctx, "networkEndpointGroups.delete", zone, name)
	ref := neg.Ref{Zone: zone, Name: name}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.created[ref] != nil {
		delete(d.created, ref)
	} else {
		d.deleted[ref] = true
	}
	d.forget(ref)
	return nil
}

func (d *dryRun) AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	d.skip(ctx, "networkEndpointGroups.attachNetworkEndpoints", zone, name, "endpoints", len(eps))
	d.change(neg.Ref{Zone: zone, Name: name}, eps, d.attached, d.detached)
	return nil
}

func (d *dryRun) DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	d.skip(ctx, "networkEndpointGroups.detachNetworkEndpoints", zone, name, "endpoints", len(eps))
	d.change(neg.Ref{Zone: zone, Name: name}, eps, d.detached, d.attached)
	return nil
}

// prune drops the pretended changes of a real NEG that its listing already shows (an endpoint
// "attached" that is in GCE, one "detached" that is not, e.g. after a change by hand), so that
// ListNEGs sizes stay exact. Callers hold mu.
func (d *dryRun) prune(ref neg.Ref, listed []EndpointHealth) {
	inGCE := make(neg.EndpointSet, len(listed))
	for _, e := range listed {
		inGCE.Insert(e.Endpoint)
	}
	for e := range d.attached[ref] {
		if inGCE.Has(e) {
			delete(d.attached[ref], e)
		}
	}
	for e := range d.detached[ref] {
		if !inGCE.Has(e) {
			delete(d.detached[ref], e)
		}
	}
}

// change records eps as added to `to` and taken out of `from` for ref.
func (d *dryRun) change(ref neg.Ref, eps []neg.Endpoint, to, from map[neg.Ref]neg.EndpointSet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if to[ref] == nil {
		to[ref] = neg.NewEndpointSet()
	}
	for _, e := range eps {
		to[ref].Insert(e)
		delete(from[ref], e)
	}
}
