package svcneg

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// API coordinates of the CRD, as GKE defines them.
const (
	Group     = "networking.gke.io"
	Version   = "v1beta1"
	Kind      = "ServiceNetworkEndpointGroup"
	ListKind  = "ServiceNetworkEndpointGroupList"
	Resource  = "servicenetworkendpointgroups"
	Singular  = "servicenetworkendpointgroup"
	ShortName = "svcneg"
	// CRDName is the name of the CustomResourceDefinition object.
	CRDName = Resource + "." + Group
)

// GroupVersion and GroupVersionResource of ServiceNetworkEndpointGroup.
var (
	GroupVersion         = schema.GroupVersion{Group: Group, Version: Version}
	GroupVersionResource = GroupVersion.WithResource(Resource)
)

// Labels GKE puts on every ServiceNetworkEndpointGroup; tools select by them.
const (
	// LabelManagedBy is always ManagedByValue.
	LabelManagedBy = "networking.gke.io/managed-by"
	ManagedByValue = "neg-controller"
	// LabelServiceName is the name of the Service the object belongs to (same namespace).
	LabelServiceName = "networking.gke.io/service-name"
	// LabelServicePort is the Service port number, in decimal.
	LabelServicePort = "networking.gke.io/service-port"
)

// LabelCreatedBy marks the objects neg-controller created, with value CreatedByValue. GKE's NEG
// controller puts the same three networking.gke.io labels on its objects (and its finalizer,
// and a controller reference to the Service, as we do), so this label is the only way to tell
// ours apart. An object without it is never changed or deleted, whatever its other labels say.
const (
	LabelCreatedBy = "neg-controller.io/created-by"
	CreatedByValue = "neg-controller"
)

// GKEFinalizer is the finalizer GKE's controller puts on its ServiceNetworkEndpointGroups and
// removes once it has deleted the NEGs. neg-controller never adds it and never removes it: it
// leaves GKE's objects alone (see LabelCreatedBy).
const GKEFinalizer = "networking.gke.io/neg-finalizer"

// Condition types.
const (
	// ConditionInitialized is True when every NEG of the Service port exists in every zone with
	// candidate nodes.
	ConditionInitialized = "Initialized"
	// ConditionSynced is True when the NEGs hold exactly the Service port's endpoints.
	ConditionSynced = "Synced"
)

// Condition reasons (GKE's).
const (
	ReasonInitializationSuccessful = "NegInitializationSuccessful"
	ReasonInitializationFailed     = "NegInitializationFailed"
	ReasonSyncSuccessful           = "NegSyncSuccessful"
	ReasonSyncFailed               = "NegSyncFailed"
)

// NetworkEndpointType values.
const (
	TypeGCEVMIPPort         = "GCE_VM_IP_PORT"
	TypeGCEVMIP             = "GCE_VM_IP"
	TypeNonGCPPrivateIPPort = "NON_GCP_PRIVATE_IP_PORT"
)

// NEG states. An empty state means ACTIVE.
const (
	// StateActive: the NEG's zone has candidate nodes; it holds the Service's endpoints there.
	StateActive = "ACTIVE"
	// StateInactive: the zone has no candidate node any more; the NEG is kept, emptied, so load
	// balancer backends that reference it stay valid.
	StateInactive = "INACTIVE"
	// StateToBeDeleted: the NEG is no longer wanted and is being deleted.
	StateToBeDeleted = "TO_BE_DELETED"
)

// ServiceNetworkEndpointGroup reports the NEGs of one Service port: one object per NEG name, in
// the Service's namespace, named after the NEG.
type ServiceNetworkEndpointGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceNetworkEndpointGroupSpec   `json:"spec"`
	Status ServiceNetworkEndpointGroupStatus `json:"status,omitempty"`
}

// ServiceNetworkEndpointGroupSpec is empty: everything is derived from the Service.
type ServiceNetworkEndpointGroupSpec struct{}

// ServiceNetworkEndpointGroupStatus is written by the controller.
type ServiceNetworkEndpointGroupStatus struct {
	// NetworkEndpointGroups has one entry per zonal NEG that exists.
	NetworkEndpointGroups []NegObjectReference `json:"networkEndpointGroups,omitempty"`
	// Conditions are Initialized and Synced.
	Conditions []Condition `json:"conditions,omitempty"`
	// LastSyncTime is when the controller last changed this status (it does not write when a
	// sync changes nothing).
	LastSyncTime metav1.Time `json:"lastSyncTime,omitempty"`
}

// NegObjectReference identifies one zonal NEG in GCE.
type NegObjectReference struct {
	// ID is the NEG's numeric GCE id, in decimal.
	ID string `json:"id"`
	// SelfLink is the NEG's URL as GCE returns it; it names the zone.
	SelfLink            string `json:"selfLink,omitempty"`
	NetworkEndpointType string `json:"networkEndpointType,omitempty"`
	SubnetURL           string `json:"subnetURL,omitempty"`
	State               string `json:"state,omitempty"`
}

// Condition is GKE's condition shape (metav1.Condition without the validation).
type Condition struct {
	Type               string                 `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	ObservedGeneration int64                  `json:"observedGeneration,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime"`
	Reason             string                 `json:"reason"`
	Message            string                 `json:"message"`
}

// ServiceNetworkEndpointGroupList is a list of ServiceNetworkEndpointGroups.
type ServiceNetworkEndpointGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ServiceNetworkEndpointGroup `json:"items"`
}

// DeepCopy returns a deep copy of o.
func (o *ServiceNetworkEndpointGroup) DeepCopy() *ServiceNetworkEndpointGroup {
	if o == nil {
		return nil
	}
	out := *o
	o.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Status.NetworkEndpointGroups = append([]NegObjectReference(nil), o.Status.NetworkEndpointGroups...)
	out.Status.Conditions = append([]Condition(nil), o.Status.Conditions...)
	return &out
}

// FindCondition returns the condition of type t, or nil.
func (s *ServiceNetworkEndpointGroupStatus) FindCondition(t string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}
