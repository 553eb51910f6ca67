package gce

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"k8s.io/klog/v2"
)

// MaxBackendsPerService is GCE's limit of backends in one backend service.
const MaxBackendsPerService = 50

// BackendService is the part of a global (Region "") or regional backend service the controller
// reads and writes.
type BackendService struct {
	Name                string
	Region              string // region name; "" for a global backend service
	SelfLink            string
	Protocol            string // HTTP, HTTPS, HTTP2, TCP, SSL, UDP, GRPC, H2C, UNSPECIFIED
	LoadBalancingScheme string
	// Fingerprint is the value to send back with an update (optimistic concurrency): an
	// update with a stale fingerprint fails with an error classified Conflict (412).
	Fingerprint string
	Backends    []Backend
}

// Backend is one backend of a backend service. A Backend read by GetBackendService remembers
// the API object it came from: as long as its exported fields are not changed, an update
// sends it back exactly as read (every field, also those this type does not expose), so the
// backends of other writers are never altered.
type Backend struct {
	// Group is the URL of the backend's NEG (or instance group), as GCE returns it.
	Group                     string
	BalancingMode             string // RATE, CONNECTION, UTILIZATION, ...
	MaxRatePerEndpoint        float64
	MaxConnectionsPerEndpoint int64
	// CapacityScaler is 0 or 0.1–1.0.
	CapacityScaler float64

	raw *compute.Backend
}

// SameSettings reports whether b and o have equal exported fields (group compared as a
// resource, so full and partial URLs of one NEG are equal).
func (b Backend) SameSettings(o Backend) bool {
	return SameResource(b.Group, o.Group) && b.BalancingMode == o.BalancingMode &&
		b.MaxRatePerEndpoint == o.MaxRatePerEndpoint && b.MaxConnectionsPerEndpoint == o.MaxConnectionsPerEndpoint &&
		b.CapacityScaler == o.CapacityScaler
}

// BackendServices reads and updates backend services, global (region "") or regional. It is
// separate from Cloud so that it can be enabled, wrapped and rate-limited on its own.
// Implementations are safe for concurrent use; errors classify like Cloud's.
type BackendServices interface {
	// GetBackendService returns the backend service with its fingerprint, or an error for
	// which IsNotFound is true.
	GetBackendService(ctx context.Context, region, name string) (*BackendService, error)

	// UpdateBackendService replaces the backends of the backend service bs.Name in region (""
	// = global) with bs.Backends, provided bs.Fingerprint is still current, and waits for the
	// operation. Nothing but the backends list changes. A stale fingerprint — also one that
	// turns stale while the operation runs — yields an error for which IsConflict is true: read
	// again, re-apply, retry. A missing backend service, or a backend naming a NEG that does not
	// exist, yields NotFound.
	UpdateBackendService(ctx context.Context, region string, bs *BackendService) error
}

var _ BackendServices = (*Compute)(nil)

// GetBackendService returns a global (region "") or regional backend service.
func (c *Compute) GetBackendService(ctx context.Context, region, name string) (*BackendService, error) {
	method := "backendServices.get"
	if region != "" {
		method = "regionBackendServices.get"
	}
	var bs *compute.BackendService
	err := c.callRetry(ctx, GroupGetBackendService, method, func(ctx context.Context) error {
		var err error
		if region == "" {
			bs, err = c.svc.BackendServices.Get(c.cfg.Project, name).Context(ctx).Do()
		} else {
			bs, err = c.svc.RegionBackendServices.Get(c.cfg.Project, region, name).Context(ctx).Do()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting backend service %s: %w", scopedName(region, name), err)
	}
	return backendServiceFromAPI(bs, region), nil
}

// UpdateBackendService PATCHes the backends list (always the complete list: a JSON merge patch
// replaces arrays whole) with the fingerprint in the body and as If-Match, and waits for the
// global or regional operation.
func (c *Compute) UpdateBackendService(ctx context.Context, region string, bs *BackendService) error {
	body := &compute.BackendService{
		Name:            bs.Name,
		Fingerprint:     bs.Fingerprint,
		ForceSendFields: []string{"Backends"}, // an empty list is sent as [] and clears them
	}
	for _, b := range bs.Backends {
		body.Backends = append(body.Backends, b.toAPI())
	}
	method := "backendServices.patch"
	if region != "" {
		method = "regionBackendServices.patch"
	}
	_, err := c.mutate(ctx, GroupUpdateBackendService, method, func(ctx context.Context, id string) (*compute.Operation, error) {
		if region == "" {
			call := c.svc.BackendServices.Patch(c.cfg.Project, bs.Name, body).RequestId(id).Context(ctx)
			call.Header().Set("If-Match", bs.Fingerprint)
			return call.Do()
		}
		call := c.svc.RegionBackendServices.Patch(c.cfg.Project, region, bs.Name, body).RequestId(id).Context(ctx)
		call.Header().Set("If-Match", bs.Fingerprint)
		return call.Do()
	})
	if err != nil {
		return fmt.Errorf("updating the backends of backend service %s: %w", scopedName(region, bs.Name), err)
	}
	return nil
}

// scopedName renders "global/NAME" or "REGION/NAME" for messages.
func scopedName(region, name string) string {
	if region == "" {
		return "global/" + name
	}
	return region + "/" + name
}

func backendServiceFromAPI(bs *compute.BackendService, region string) *BackendService {
	out := &BackendService{
		Name:                bs.Name,
		Region:              region,
		SelfLink:            bs.SelfLink,
		Protocol:            bs.Protocol,
		LoadBalancingScheme: bs.LoadBalancingScheme,
		Fingerprint:         bs.Fingerprint,
	}
	for _, b := range bs.Backends {
		if b == nil {
			continue
		}
		raw := *b
		out.Backends = append(out.Backends, Backend{
			Group:                     b.Group,
			BalancingMode:             b.BalancingMode,
			MaxRatePerEndpoint:        b.MaxRatePerEndpoint,
			MaxConnectionsPerEndpoint: b.MaxConnectionsPerEndpoint,
			CapacityScaler:            b.CapacityScaler,
			raw:                       &raw,
		})
	}
	return out
}

// toAPI returns the API form of b: the object as read when b is unchanged, else the object as
// read (or a new one) with b's settings applied; limits that do not belong to b's balancing
// mode are cleared, since GCE rejects them. capacityScaler is always sent (0 is a valid value
// that would otherwise be omitted and default to 1).
func (b Backend) toAPI() *compute.Backend {
	var out compute.Backend
	if b.raw != nil {
		out = *b.raw
	}
	read := b.raw != nil && (Backend{Group: out.Group, BalancingMode: out.BalancingMode, MaxRatePerEndpoint: out.MaxRatePerEndpoint,
		MaxConnectionsPerEndpoint: out.MaxConnectionsPerEndpoint, CapacityScaler: out.CapacityScaler}).SameSettings(b)
	if !read {
		out.Group = b.Group
		out.BalancingMode = b.BalancingMode
		out.MaxRatePerEndpoint = b.MaxRatePerEndpoint
		out.MaxConnectionsPerEndpoint = b.MaxConnectionsPerEndpoint
		out.CapacityScaler = b.CapacityScaler
		switch b.BalancingMode {
		case "RATE":
			out.MaxConnections, out.MaxConnectionsPerInstance, out.MaxConnectionsPerEndpoint = 0, 0, 0
			out.MaxUtilization = 0
		case "CONNECTION":
			out.MaxRate, out.MaxRatePerInstance, out.MaxRatePerEndpoint = 0, 0, 0
			out.MaxUtilization = 0
		}
	}
	out.ForceSendFields = append(slices.Clone(out.ForceSendFields), "CapacityScaler")
	return &out
}

// DryRunBackendServices wraps inner so that no backend service is changed: UpdateBackendService
// is logged (klog, level 0: method, backend service, backend count) and reported to observe
// with the API method id (observe may be nil), then answered with success, provided the
// fingerprint is the current one (else Conflict, as GCE would). Reads go to inner, with the
// pretended backends overlaid as long as the backend service's real fingerprint is the one the
// pretended write was based on; so the caller converges on what it would have written and
// stays quiet, as with DryRun.
func DryRunBackendServices(inner BackendServices, observe func(method string)) BackendServices {
	if observe == nil {
		observe = func(string) {}
	}
	return &dryRunBackends{inner: inner, observe: observe, written: map[string]dryRunWrite{}}
}

type dryRunBackends struct {
	inner   BackendServices
	observe func(method string)

	mu      sync.Mutex
	written map[string]dryRunWrite // by scopedName
}

// dryRunWrite is a pretended update: the backends it would have set on the version of the
// backend service with fingerprint base.
type dryRunWrite struct {
	base     string
	backends []Backend
}

var _ BackendServices = (*dryRunBackends)(nil)

func (d *dryRunBackends) GetBackendService(ctx context.Context, region, name string) (*BackendService, error) {
	bs, err := d.inner.GetBackendService(ctx, region, name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.written[scopedName(region, name)]; ok {
		if w.base != bs.Fingerprint {
			delete(d.written, scopedName(region, name)) // GCE changed: the overlay is stale
		} else {
			bs.Backends = slices.Clone(w.backends)
		}
	}
	return bs, nil
}

func (d *dryRunBackends) UpdateBackendService(ctx context.Context, region string, bs *BackendService) error {
	method := "compute.backendServices.patch"
	if region != "" {
		method = "compute.regionBackendServices.patch"
	}
	cur, err := d.inner.GetBackendService(ctx, region, bs.Name)
	if err != nil {
		return err
	}
	if cur.Fingerprint != bs.Fingerprint {
		return fmt.Errorf("updating the backends of backend service %s: %w", scopedName(region, bs.Name),
			&googleapi.Error{Code: http.StatusPreconditionFailed, Message: "Invalid fingerprint.",
				Errors: []googleapi.ErrorItem{{Reason: "conditionNotMet"}}})
	}
	d.observe(method)
	klog.FromContext(ctx).Info("Dry run: not calling GCE", "method", method, "backendService", scopedName(region, bs.Name),
		"backends", len(bs.Backends))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.written[scopedName(region, bs.Name)] = dryRunWrite{base: bs.Fingerprint, backends: slices.Clone(bs.Backends)}
	return nil
}
