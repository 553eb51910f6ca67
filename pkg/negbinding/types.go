package negbinding

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// API coordinates of the CRD, as GKE defines them (kubernetes/ingress-gce
// pkg/apis/negbinding/v1beta1).
const (
	Group     = "networking.gke.io"
	Version   = "v1beta1"
	Kind      = "NetworkEndpointGroupBinding"
	ListKind  = "NetworkEndpointGroupBindingList"
	Resource  = "networkendpointgroupbindings"
	Singular  = "networkendpointgroupbinding"
	ShortName = "negbinding"
	// CRDName is the name of the CustomResourceDefinition object.
	CRDName = Resource + "." + Group
)

// GroupVersion and GroupVersionResource of NetworkEndpointGroupBinding.
var (
	GroupVersion         = schema.GroupVersion{Group: Group, Version: Version}
	GroupVersionResource = GroupVersion.WithResource(Resource)
)

// Finalizer is GKE's finalizer on bindings: the controller adds it before the first call on a
// bound NEG and removes it once the endpoints it attached are detached (or the cleanup gave up,
// see Config.CleanupTimeout).
const Finalizer = "networking.gke.io/negbinding-cleanup"

// ServiceKind is the only backendRef kind.
const ServiceKind = "Service"

// Condition types.
const (
	// ConditionBackendRefAttached is True when the bound NEGs hold exactly the endpoints of the
	// backendRef's Service port (every NEG of the spec accepted, nothing in flight). It is the
	// condition to wait on (kubectl wait --for=condition=BackendRefAttached negbinding/NAME).
	ConditionBackendRefAttached = "BackendRefAttached"
	// ConditionNEGsAccepted is True when every NEG of the spec, in every zone it lists, was
	// found and may be bound; False names each refused NEG with its reason.
	ConditionNEGsAccepted = "NEGsAccepted"
)

// Condition reasons of BackendRefAttached.
const (
	// ReasonAttached: every bound NEG holds exactly the Service port's endpoints.
	ReasonAttached = "Attached"
	// ReasonSyncing: attach or detach calls are pending or in flight.
	ReasonSyncing = "Syncing"
	// ReasonSyncFailed: a call on a bound NEG failed; it is retried with backoff.
	ReasonSyncFailed = "SyncFailed"
	// ReasonBackendNotFound: the Service does not exist; the NEGs are left as they are.
	ReasonBackendNotFound = "BackendNotFound"
	// ReasonPortNotFound: the Service has no such port; the NEGs are left as they are.
	ReasonPortNotFound = "PortNotFound"
	// ReasonInvalidSpec: the spec is not usable (see the message); nothing is touched.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNEGsRefused: some NEGs were refused (see NEGsAccepted); the others are synced.
	ReasonNEGsRefused = "NEGsRefused"
	// ReasonDetaching: the binding is being deleted; its endpoints are being detached.
	ReasonDetaching = "Detaching"
)

// Condition reasons of NEGsAccepted, and of the refusal events (one per refused NEG and zone).
const (
	// ReasonAccepted: every NEG of the spec is bound.
	ReasonAccepted = "Accepted"
	// ReasonNEGNotFound: the NEG does not exist in a zone the spec lists (the controller
	// creates nothing).
	ReasonNEGNotFound = "NEGNotFound"
	// ReasonNEGConflict: another binding binds the NEG, or a Service's cloud.google.com/neg
	// annotation names it.
	ReasonNEGConflict = "NEGConflict"
	// ReasonNEGManagedByController: the NEG is a controller-managed NEG — its description
	// names a cluster (an annotation-driven NEG of this or another cluster) or its name has
	// the shape of a generated NEG name (k8s1-, k8s2-) — and a binding never touches those.
	ReasonNEGManagedByController = "NEGManagedByController"
	// ReasonNEGDescriptionMismatch: the NEG's description is GKE's binding description
	// ({"cluster-name","namespace","backend-ref"}) naming another cluster or namespace.
	ReasonNEGDescriptionMismatch = "NEGDescriptionMismatch"
	// ReasonNEGTypeMismatch: the NEG is not of type GCE_VM_IP_PORT.
	ReasonNEGTypeMismatch = "NEGTypeMismatch"
	// ReasonNEGNetworkMismatch: the NEG is on another network than the cluster's (--network).
	ReasonNEGNetworkMismatch = "NEGNetworkMismatch"
	// ReasonNEGSubnetMismatch: the NEG, or the spec's subnet, names another subnetwork than
	// the cluster's (--subnetwork).
	ReasonNEGSubnetMismatch = "NEGSubnetMismatch"
	// ReasonNEGNotAllowed: --negbinding-allow does not allow the NEG name in the binding's
	// namespace.
	ReasonNEGNotAllowed = "NEGNotAllowed"
	// ReasonNoZones: a NEG of the spec lists no zone.
	ReasonNoZones = "NoZones"
)

// Event reasons besides the refusals above (recorded on the binding).
const (
	// ReasonAttach and ReasonDetach report endpoint calls (Normal), as on Services.
	ReasonAttach = "Attach"
	ReasonDetach = "Detach"
	// ReasonAttachFailed and ReasonDetachFailed report failed calls (Warning).
	ReasonAttachFailed = "AttachFailed"
	ReasonDetachFailed = "DetachFailed"
	// ReasonListFailed: reading a bound NEG or its endpoints failed (Warning).
	ReasonListFailed = "ListNetworkEndpointsFailed"
	// ReasonEndpointsSkipped: endpoints of the Service port are in zones without a bound NEG,
	// or on nodes that cannot be placed (Warning).
	ReasonEndpointsSkipped = "EndpointsSkipped"
	// ReasonCleanedUp: the binding's endpoints were detached; the finalizer is removed
	// (Normal).
	ReasonCleanedUp = "CleanedUp"
	// ReasonCleanupTimedOut: the endpoints could not all be detached within the cleanup
	// timeout; the finalizer is removed anyway so the binding (and its namespace) can go
	// (Warning, naming the NEGs that may still hold endpoints).
	ReasonCleanupTimedOut = "CleanupTimedOut"
	// ReasonReleased: a NEG left the binding (removed from the spec, or no longer allowed)
	// and its endpoints were detached (Normal).
	ReasonReleased = "Released"
)

// NetworkEndpointGroupBinding binds pre-existing zonal NEGs to a Service port: the controller
// keeps their endpoints in step with the port's endpoints and never creates or deletes a NEG.
type NetworkEndpointGroupBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   Spec   `json:"spec,omitempty"`
	Status Status `json:"status,omitempty"`
}

// Spec is the user's part. backendRef is immutable (CEL rule of the CRD).
type Spec struct {
	// BackendRef is the Service port whose endpoints the NEGs hold.
	BackendRef *BackendRef `json:"backendRef"`
	// NetworkEndpointGroups are the NEGs to keep in step (at most 50, one per subnet).
	NetworkEndpointGroups []SpecNEGRef `json:"networkEndpointGroups"`
}

// BackendRef names a Service port in the binding's namespace.
type BackendRef struct {
	// Group is "" (or "core") for Services.
	Group string `json:"group"`
	// Kind is "Service".
	Kind string `json:"kind,omitempty"`
	// Name is the Service's name.
	Name string `json:"name,omitempty"`
	// Port is the Service port number (spec.ports[].port, not the target port).
	Port int32 `json:"port,omitempty"`
}

// SpecNEGRef names one NEG, the same name in each of its zones.
type SpecNEGRef struct {
	// Name is the NEG's name.
	Name string `json:"name"`
	// Subnet is the NEG's subnetwork name; empty: the cluster's.
	Subnet string `json:"subnet"`
	// Zones are the zones of the NEG to keep in step (at most 10).
	Zones []string `json:"zones"`
}

// Status is written by the controller.
type Status struct {
	// LastSyncTime is when the controller last wrote the status after a change (not on syncs
	// that change nothing).
	LastSyncTime metav1.Time `json:"lastSyncTime,omitempty"`
	// Conditions are BackendRefAttached and NEGsAccepted.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// NetworkEndpointGroups are the zonal NEGs the binding manages: accepted ones, and ones
	// being released. It is written before the first call on a NEG, and is the record of what
	// the binding may detach on deletion.
	NetworkEndpointGroups []StatusNEGRef `json:"networkEndpointGroups,omitempty"`
}

// StatusNEGRef is one managed zonal NEG.
type StatusNEGRef struct {
	// ResourceURL is the NEG's selfLink, as GCE returns it.
	ResourceURL string `json:"resourceURL"`
	// SubnetURL is the NEG's subnetwork URL, as GCE returns it (empty if it has none).
	SubnetURL string `json:"subnetURL"`
}

// DeepCopy returns a deep copy of b.
func (b *NetworkEndpointGroupBinding) DeepCopy() *NetworkEndpointGroupBinding {
	if b == nil {
		return nil
	}
	out := *b
	b.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if b.Spec.BackendRef != nil {
		r := *b.Spec.BackendRef
		out.Spec.BackendRef = &r
	}
	if b.Spec.NetworkEndpointGroups != nil {
		out.Spec.NetworkEndpointGroups = make([]SpecNEGRef, len(b.Spec.NetworkEndpointGroups))
		for i, n := range b.Spec.NetworkEndpointGroups {
			n.Zones = slices.Clone(n.Zones)
			out.Spec.NetworkEndpointGroups[i] = n
		}
	}
	out.Status.Conditions = slices.Clone(b.Status.Conditions)
	out.Status.NetworkEndpointGroups = slices.Clone(b.Status.NetworkEndpointGroups)
	return &out
}

// DeepCopyObject implements runtime.Object (the informer's cache holds typed bindings).
func (b *NetworkEndpointGroupBinding) DeepCopyObject() runtime.Object { return b.DeepCopy() }

// FindCondition returns the condition of type t, or nil.
func (s *Status) FindCondition(t string) *metav1.Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}
