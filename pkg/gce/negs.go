package gce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	compute "google.golang.org/api/compute/v1"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// pageSize is maxResults for list calls (the API maximum).
const pageSize = 500

// MaxEndpointsPerCall is the most endpoints one attach/detach call may carry (the de-facto GCE
// limit; the emulator enforces it).
const MaxEndpointsPerCall = 500

// GetNEG returns one zonal NEG, or an error for which IsNotFound is true.
func (c *Compute) GetNEG(ctx context.Context, zone, name string) (*NEG, error) {
	var n *compute.NetworkEndpointGroup
	err := c.callRetry(ctx, GroupGetNEG, "networkEndpointGroups.get", func(ctx context.Context) error {
		var err error
		n, err = c.svc.NetworkEndpointGroups.Get(c.cfg.Project, zone, name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting NEG %s/%s: %w", zone, name, err)
	}
	out := fromAPI(n)
	return &out, nil
}

// CreateNEG inserts a zonal NEG and waits for the operation (see createdNEG for the result). An existing NEG of
// that name yields an error classified AlreadyExists. Bare network / subnetwork names in spec
// are expanded with NetworkURL / SubnetworkURL (the subnetwork in Config.Region).
func (c *Compute) CreateNEG(ctx context.Context, zone string, spec NEGSpec) (*NEG, error) {
	typ := spec.Type
	if typ == "" {
		typ = TypeGCEVMIPPort
	}
	if typ == TypeNonGCPPrivateIPPort && spec.Subnetwork != "" {
		return nil, fmt.Errorf("creating NEG %s/%s: %w (got %q)", zone, spec.Name, ErrHybridSubnetwork, spec.Subnetwork)
	}
	body := &compute.NetworkEndpointGroup{
		Name:                spec.Name,
		Description:         spec.Description,
		NetworkEndpointType: typ,
		Network:             NetworkURL(c.cfg.Project, spec.Network),
		Subnetwork:          SubnetworkURL(c.cfg.Project, c.region(zone), spec.Subnetwork),
		Annotations:         spec.Annotations,
	}
	op, err := c.mutate(ctx, GroupInsertNEG, "networkEndpointGroups.insert", func(ctx context.Context, id string) (*compute.Operation, error) {
		return c.svc.NetworkEndpointGroups.Insert(c.cfg.Project, zone, body).RequestId(id).Context(ctx).Do()
	})
	if err != nil {
		return nil, fmt.Errorf("creating NEG %s/%s: %w", zone, spec.Name, err)
	}
	if n, ok := createdNEG(op, zone, body); ok {
		return n, nil
	}
	return c.GetNEG(ctx, zone, spec.Name)
}

// ErrHybridSubnetwork is returned (wrapped) by CreateNEG for a NON_GCP_PRIVATE_IP_PORT NEG with a
// subnetwork; no call is made (classified Permanent). Hybrid connectivity NEGs belong to a network
// only: their endpoints are outside every subnetwork. Whether GCE rejects or ignores a subnetwork
// on them is not documented; the adapter refuses to send one.
var ErrHybridSubnetwork = errors.New("a NON_GCP_PRIVATE_IP_PORT NEG takes a network, not a subnetwork")

// createdNEG describes the NEG an insert created from what was sent and the done operation's
// targetLink and targetId (documented output fields of every insert operation), saving a get
// per NEG. Network URLs are given the targetLink's scheme and host, the form GCE returns them
// in. ok is false when the operation lacks either field; the caller then reads the NEG back.
func createdNEG(op *compute.Operation, zone string, body *compute.NetworkEndpointGroup) (*NEG, bool) {
	if op == nil || op.TargetLink == "" || op.TargetId == 0 {
		return nil, false
	}
	base := ""
	if i := strings.Index(op.TargetLink, "/projects/"); i >= 0 {
		base = op.TargetLink[:i+1]
	}
	full := func(url string) string {
		if url == "" || !strings.HasPrefix(url, "projects/") {
			return url
		}
		return base + url
	}
	return &NEG{
		ID:          fmt.Sprint(op.TargetId),
		Name:        body.Name,
		Zone:        zone,
		SelfLink:    op.TargetLink,
		Description: body.Description,
		Type:        body.NetworkEndpointType,
		Network:     full(body.Network),
		Subnetwork:  full(body.Subnetwork),
		Annotations: body.Annotations,
	}, true
}

// region returns Config.Region, or the region part of a zone name ("us-central1-a" →
// "us-central1") when no region is configured.
func (c *Compute) region(zone string) string {
	if c.cfg.Region != "" {
		return c.cfg.Region
	}
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}

// DeleteNEG deletes a zonal NEG and waits. A missing NEG — 404 on the call or a failed
// operation reporting 404 — is success. If the operation is lost while waiting, the NEG is read
// back: gone = success. A NEG still referenced by a backend service yields an error classified
// InUse (synchronously or from the operation).
func (c *Compute) DeleteNEG(ctx context.Context, zone, name string) error {
	_, err := c.mutate(ctx, GroupDeleteNEG, "networkEndpointGroups.delete", func(ctx context.Context, id string) (*compute.Operation, error) {
		return c.svc.NetworkEndpointGroups.Delete(c.cfg.Project, zone, name).RequestId(id).Context(ctx).Do()
	})
	var lost *OperationLostError
	if errors.As(err, &lost) {
		if _, gerr := c.GetNEG(ctx, zone, name); IsNotFound(gerr) {
			err = nil
		}
	}
	if err == nil || IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("deleting NEG %s/%s: %w", zone, name, err)
}

// ListNEGs lists the zonal NEGs of every zone of the project (aggregatedList, all pages).
// Regional and global NEGs and warning-only scopes are skipped; unreachable scopes are logged
// (their NEGs are missing from the result).
func (c *Compute) ListNEGs(ctx context.Context) ([]NEG, error) {
	var out []NEG
	token := ""
	for {
		var page *compute.NetworkEndpointGroupAggregatedList
		err := c.callRetry(ctx, GroupListNEGs, "networkEndpointGroups.aggregatedList", func(ctx context.Context) error {
			var err error
			page, err = c.svc.NetworkEndpointGroups.AggregatedList(c.cfg.Project).
				MaxResults(pageSize).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing NEGs of project %s: %w", c.cfg.Project, err)
		}
		for scope, list := range page.Items {
			if !strings.HasPrefix(scope, "zones/") {
				continue
			}
			for _, n := range list.NetworkEndpointGroups {
				out = append(out, fromAPI(n))
			}
		}
		if len(page.Unreachables) > 0 {
			klog.FromContext(ctx).Info("NEG listing skipped unreachable scopes", "unreachables", page.Unreachables)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ListNetworkEndpoints lists every endpoint of a NEG, page by page (each page is one call
// charged to GroupListEndpoints). withHealth asks for healthStatus SHOW, else SKIP.
func (c *Compute) ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]EndpointHealth, error) {
	req := &compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: "SKIP"}
	if withHealth {
		req.HealthStatus = "SHOW"
	}
	var out []EndpointHealth
	token := ""
	for {
		var page *compute.NetworkEndpointGroupsListNetworkEndpoints
		err := c.callRetry(ctx, GroupListEndpoints, "networkEndpointGroups.listNetworkEndpoints", func(ctx context.Context) error {
			var err error
			page, err = c.svc.NetworkEndpointGroups.ListNetworkEndpoints(c.cfg.Project, zone, name, req).
				MaxResults(pageSize).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing endpoints of NEG %s/%s: %w", zone, name, err)
		}
		for _, item := range page.Items {
			if item == nil || item.NetworkEndpoint == nil {
				continue
			}
			out = append(out, endpointFromAPI(item))
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	return out, nil
}

// AttachNetworkEndpoints attaches eps (at most MaxEndpointsPerCall) in one call and waits for
// the operation. The requestId is fresh per call and reused on the adapter's own retries.
func (c *Compute) AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	if err := checkBatch(eps); err != nil {
		return fmt.Errorf("attaching to NEG %s/%s: %w", zone, name, err)
	}
	req := &compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: endpointsToAPI(eps)}
	_, err := c.mutate(ctx, GroupAttach, "networkEndpointGroups.attachNetworkEndpoints", func(ctx context.Context, id string) (*compute.Operation, error) {
		return c.svc.NetworkEndpointGroups.AttachNetworkEndpoints(c.cfg.Project, zone, name, req).RequestId(id).Context(ctx).Do()
	})
	if err != nil {
		return fmt.Errorf("attaching %d endpoints to NEG %s/%s: %w", len(eps), zone, name, err)
	}
	return nil
}

// DetachNetworkEndpoints detaches eps, like AttachNetworkEndpoints.
func (c *Compute) DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	if err := checkBatch(eps); err != nil {
		return fmt.Errorf("detaching from NEG %s/%s: %w", zone, name, err)
	}
	req := &compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: endpointsToAPI(eps)}
	_, err := c.mutate(ctx, GroupDetach, "networkEndpointGroups.detachNetworkEndpoints", func(ctx context.Context, id string) (*compute.Operation, error) {
		return c.svc.NetworkEndpointGroups.DetachNetworkEndpoints(c.cfg.Project, zone, name, req).RequestId(id).Context(ctx).Do()
	})
	if err != nil {
		return fmt.Errorf("detaching %d endpoints from NEG %s/%s: %w", len(eps), zone, name, err)
	}
	return nil
}

// ErrBatchSize is returned (wrapped) for an empty or oversized attach/detach batch; it is
// classified Permanent and no call is made.
var ErrBatchSize = errors.New("batch size out of range")

func checkBatch(eps []neg.Endpoint) error {
	if len(eps) == 0 || len(eps) > MaxEndpointsPerCall {
		return fmt.Errorf("%w: %d endpoints (want 1..%d)", ErrBatchSize, len(eps), MaxEndpointsPerCall)
	}
	return nil
}

func endpointsToAPI(eps []neg.Endpoint) []*compute.NetworkEndpoint {
	out := make([]*compute.NetworkEndpoint, 0, len(eps))
	for _, e := range eps {
		out = append(out, &compute.NetworkEndpoint{Instance: e.Instance, IpAddress: e.IP, Ipv6Address: e.IPv6, Port: e.Port})
	}
	return out
}

func endpointFromAPI(item *compute.NetworkEndpointWithHealthStatus) EndpointHealth {
	ne := item.NetworkEndpoint
	// The instance name is interned: a slice of the listed URL would keep all of it alive, in
	// every endpoint set that holds the endpoint.
	eh := EndpointHealth{Endpoint: neg.Endpoint{Instance: intern(LastSegment(ne.Instance)), IP: ne.IpAddress,
		IPv6: canonicalIPv6(ne.Ipv6Address), Port: ne.Port}}
	for _, h := range item.Healths {
		if h == nil {
			continue
		}
		var hh Health
		if h.BackendService != nil {
			hh.BackendService = h.BackendService.BackendService
		}
		if h.HealthCheck != nil {
			hh.HealthCheck = h.HealthCheck.HealthCheck
		}
		hh.State, hh.IPv6State = h.HealthState, h.Ipv6HealthState
		eh.Healths = append(eh.Healths, hh)
	}
	return eh
}

// canonicalIPv6 renders an IPv6 address in RFC 5952 form, the form the controller computes
// desired endpoints in, so a listed endpoint equals the desired one whatever form GCE lists it
// in (whether GCE always lists the canonical form is [unverified]).
func canonicalIPv6(s string) string {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return a.String()
	}
	return s
}

func fromAPI(n *compute.NetworkEndpointGroup) NEG {
	return NEG{
		ID:          fmt.Sprint(n.Id),
		Name:        n.Name,
		Zone:        intern(LastSegment(n.Zone)),
		SelfLink:    n.SelfLink,
		Description: n.Description,
		Type:        intern(n.NetworkEndpointType),
		Network:     intern(n.Network),
		Subnetwork:  intern(n.Subnetwork),
		Size:        n.Size,
		Annotations: n.Annotations,
	}
}
