package gce

import (
	"context"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// NEG types the controller creates: GCE_VM_IP_PORT NEGs hold pod IPs on GCE instances
// (endpoints name their instance); NON_GCP_PRIVATE_IP_PORT (hybrid connectivity) NEGs hold IP:port
// pairs outside Google Cloud reached over Cloud VPN or Interconnect (endpoints carry no instance,
// the NEG a network and no subnetwork).
const (
	TypeGCEVMIPPort         = "GCE_VM_IP_PORT"
	TypeNonGCPPrivateIPPort = "NON_GCP_PRIVATE_IP_PORT"
)

// NEG is the part of a zonal network endpoint group the controller reads.
type NEG struct {
	// ID is the numeric GCE id as a decimal string.
	ID          string
	Name        string
	Zone        string // zone name, not URL
	SelfLink    string // as returned by GCE (https://www.googleapis.com/compute/v1/projects/...)
	Description string
	Type        string // networkEndpointType
	Network     string // URL as returned
	Subnetwork  string // URL as returned, may be empty
	Size        int64
	// Annotations is the NEG resource's annotations field (nil if none). Other controllers
	// mark their NEGs there, e.g. k8s-hybrid-neg-controller (naming.IsHybridControllerNEG).
	Annotations map[string]string
}

// Ref returns the zonal reference of the NEG.
func (n NEG) Ref() neg.Ref { return neg.Ref{Zone: n.Zone, Name: n.Name} }

// NEGSpec is what CreateNEG inserts.
type NEGSpec struct {
	Name        string
	Type        string // defaults to TypeGCEVMIPPort
	Description string
	Network     string // full or partial URL; empty = default network
	// Subnetwork is a full or partial URL; may be empty, and must be for
	// TypeNonGCPPrivateIPPort (CreateNEG refuses it: ErrHybridSubnetwork).
	Subnetwork string
	// Annotations is set as the NEG resource's annotations field (nil: none).
	Annotations map[string]string
}

// EndpointHealth is one endpoint of a NEG listing with the health entries GCE reported for it
// (only filled when the listing asked for health).
type EndpointHealth struct {
	Endpoint neg.Endpoint
	Healths  []Health
}

// Health is one health entry of an endpoint, as seen by one backend service.
type Health struct {
	// BackendService is the URL of the backend service reporting this state (empty if the
	// entry came from something else, e.g. a forwarding rule).
	BackendService string
	// HealthCheck is the URL of the health check, when reported.
	HealthCheck string
	// State is HEALTHY, UNHEALTHY, DRAINING, TIMEOUT or UNKNOWN (healthState: the IPv4
	// address's health; empty when only the IPv6 address is checked).
	State string
	// IPv6State is ipv6HealthState, the IPv6 address's health in the same values; empty unless
	// the endpoint has an IPv6 address and the backend service checks it.
	IPv6State string
}

// Cloud is the only door between Kubernetes logic and Compute Engine. Every method takes a
// context (deadline and cancellation), waits for the GCE operation it starts, and returns
// errors that Classify understands: synchronous API errors and failed operations alike come
// back as *googleapi.Error. Implementations are safe for concurrent use.
type Cloud interface {
	// Project returns the project the cloud acts in.
	Project() string

	// GetNEG returns one zonal NEG, or an error for which IsNotFound is true.
	GetNEG(ctx context.Context, zone, name string) (*NEG, error)

	// CreateNEG inserts a zonal NEG and waits for the operation. It does not adopt: if a NEG of
	// that name exists the error is classified AlreadyExists. It returns the NEG as read back.
	CreateNEG(ctx context.Context, zone string, spec NEGSpec) (*NEG, error)

	// DeleteNEG deletes a zonal NEG and waits. A NEG that does not exist is success (nil).
	// A NEG still referenced by a backend service yields an error for which IsInUse is true.
	DeleteNEG(ctx context.Context, zone, name string) error

	// ListNEGs lists the NEGs of every zone of the project (aggregatedList, all pages).
	ListNEGs(ctx context.Context) ([]NEG, error)

	// ListNetworkEndpoints lists every endpoint of a NEG (all pages). With withHealth the
	// listing asks GCE for health (healthStatus SHOW, slower); otherwise SKIP.
	ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]EndpointHealth, error)

	// AttachNetworkEndpoints attaches eps (at most the batch size, 500) in one call with a fresh
	// requestId that is reused if the adapter retries the same call, and waits for the
	// operation.
	AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error

	// DetachNetworkEndpoints detaches eps, like AttachNetworkEndpoints.
	DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error
}
