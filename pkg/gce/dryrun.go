package gce

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// DryRun wraps inner so that reads (Project, ListZones, GetNEG, ListNEGs,
// ListNetworkEndpoints) pass through and mutations (CreateNEG, DeleteNEG,
// AttachNetworkEndpoints, DetachNetworkEndpoints) are logged (klog, level 0, structured: method,
// zone, neg, endpoints), reported to observe with the API method id, and answered with success
// without any call to GCE. observe may be nil.
//
// CreateNEG returns a synthetic NEG built from the spec (the spec's name, type, description,
// network and subnetwork; the self link from inner.Project(); no ID), so the caller proceeds as
// if the NEG existed: a dry-run caller believes its own writes. The description is returned
// unchanged because callers recognize their NEGs by it. Reads are not faked, so a later read of
// something only "created" in dry run finds nothing (GetNEG and ListNetworkEndpoints answer
// NotFound).
//
// Every mutating method of Cloud must be overridden here: the wrapper deliberately does not
// embed Cloud, so adding a method to Cloud fails to compile until its dry-run behaviour is
// decided.
func DryRun(inner Cloud, observe func(method string)) Cloud {
	if observe == nil {
		observe = func(string) {}
	}
	return &dryRun{inner: inner, observe: observe}
}

type dryRun struct {
	inner   Cloud
	observe func(method string)
}

var _ Cloud = (*dryRun)(nil)

// skip logs and counts one mutation that is not made.
func (d *dryRun) skip(ctx context.Context, method, zone, name string, kv ...any) {
	d.observe(method)
	klog.FromContext(ctx).Info("Dry run: not calling GCE", append([]any{"method", method, "zone", zone, "neg", name}, kv...)...)
}

func (d *dryRun) Project() string { return d.inner.Project() }

func (d *dryRun) ListZones(ctx context.Context) ([]string, error) { return d.inner.ListZones(ctx) }

func (d *dryRun) GetNEG(ctx context.Context, zone, name string) (*NEG, error) {
	return d.inner.GetNEG(ctx, zone, name)
}

func (d *dryRun) ListNEGs(ctx context.Context) ([]NEG, error) { return d.inner.ListNEGs(ctx) }

func (d *dryRun) ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]EndpointHealth, error) {
	return d.inner.ListNetworkEndpoints(ctx, zone, name, withHealth)
}

func (d *dryRun) CreateNEG(ctx context.Context, zone string, spec NEGSpec) (*NEG, error) {
	typ := spec.Type
	if typ == "" {
		typ = TypeGCEVMIPPort
	}
	d.skip(ctx, "networkEndpointGroups.insert", zone, spec.Name, "type", typ, "network", spec.Network,
		"subnetwork", spec.Subnetwork, "description", spec.Description)
	return &NEG{
		Name:        spec.Name,
		Zone:        zone,
		SelfLink:    NEGURL(d.inner.Project(), zone, spec.Name),
		Description: spec.Description,
		Type:        typ,
		Network:     spec.Network,
		Subnetwork:  spec.Subnetwork,
	}, nil
}

func (d *dryRun) DeleteNEG(ctx context.Context, zone, name string) error {
	d.skip(ctx, "networkEndpointGroups.delete", zone, name)
	return nil
}

func (d *dryRun) AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	d.skip(ctx, "networkEndpointGroups.attachNetworkEndpoints", zone, name, "endpoints", len(eps))
	return nil
}

func (d *dryRun) DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	d.skip(ctx, "networkEndpointGroups.detachNetworkEndpoints", zone, name, "endpoints", len(eps))
	return nil
}
