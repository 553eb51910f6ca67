package svcneg

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Owner is the Service port a ServiceNetworkEndpointGroup belongs to.
type Owner struct {
	Namespace, Name string
	UID             types.UID
	Port            int32
}

// New returns the object for owner's NEG called name, with empty status.
func New(name string, owner Owner) *ServiceNetworkEndpointGroup {
	o := &ServiceNetworkEndpointGroup{
		TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: owner.Namespace, Name: name},
	}
	SetOwner(o, owner)
	return o
}

// Ours reports whether neg-controller created obj (LabelCreatedBy). Objects GKE's NEG
// controller made carry the same networking.gke.io labels but not this one.
func Ours(obj *ServiceNetworkEndpointGroup) bool {
	return obj.Labels[LabelCreatedBy] == CreatedByValue
}

// BelongsTo reports whether obj is one of ours for the Service called service (in obj's
// namespace): it carries our mark, the managed-by label and names the Service. Any other object
// (GKE's, made by hand, or by another tool) must not be changed or deleted.
func BelongsTo(obj *ServiceNetworkEndpointGroup, service string) bool {
	return Ours(obj) && obj.Labels[LabelManagedBy] == ManagedByValue && obj.Labels[LabelServiceName] == service
}

// SetOwner makes obj's metadata say it belongs to owner: GKE's three labels and our
// LabelCreatedBy (other labels are kept), and one controller ownerReference to the Service
// (controller: true, blockOwnerDeletion: false, replacing a controller reference to an earlier
// Service of that name). Finalizers are left as they are. It reports whether anything changed.
func SetOwner(obj *ServiceNetworkEndpointGroup, owner Owner) bool {
	changed := false
	want := map[string]string{
		LabelManagedBy:   ManagedByValue,
		LabelServiceName: owner.Name,
		LabelServicePort: strconv.Itoa(int(owner.Port)),
		LabelCreatedBy:   CreatedByValue,
	}
	for k, v := range want {
		if cur, ok := obj.Labels[k]; !ok || cur != v {
			if obj.Labels == nil {
				obj.Labels = map[string]string{}
			}
			obj.Labels[k] = v
			changed = true
		}
	}
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: owner.Name, UID: owner.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}
	refs := make([]metav1.OwnerReference, 0, len(obj.OwnerReferences)+1)
	found := false
	for _, r := range obj.OwnerReferences {
		switch {
		case r.UID == owner.UID && !found && ownerRefEqual(r, ref):
			found = true
			refs = append(refs, r)
		case r.UID == owner.UID || (r.Controller != nil && *r.Controller):
			changed = true // a stale or second controller reference, or ours in another shape
		default:
			refs = append(refs, r)
		}
	}
	if !found {
		refs = append(refs, ref)
		changed = true
	}
	obj.OwnerReferences = refs
	return changed
}

func ownerRefEqual(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		ptr.Deref(a.Controller, false) == ptr.Deref(b.Controller, false) &&
		ptr.Deref(a.BlockOwnerDeletion, false) == ptr.Deref(b.BlockOwnerDeletion, false)
}

// Check is the outcome of one condition: OK, or not with a message saying why.
type Check struct {
	OK      bool
	Message string
}

// Observed is what one sync learned about the NEGs of a Service port.
type Observed struct {
	// NEGs are the NEGs that exist, in any order.
	NEGs []NegObjectReference
	// Initialized: every NEG exists where it must.
	Initialized Check
	// Synced: the NEGs hold exactly the desired endpoints, or a call failed. Nil means the
	// outcome is not known yet (calls in flight): the Synced condition is left as it is.
	Synced *Check
}

// NextStatus returns the status that reports obs, starting from prev, and whether it differs
// from prev. A condition's lastTransitionTime changes only when its status flips;
// lastSyncTime is set to now only when something else changed, so a sync that changes nothing
// yields prev itself and no write. Conditions of other types in prev are kept.
func NextStatus(prev ServiceNetworkEndpointGroupStatus, obs Observed, now metav1.Time) (ServiceNetworkEndpointGroupStatus, bool) {
	next := ServiceNetworkEndpointGroupStatus{
		NetworkEndpointGroups: sortedNEGs(obs.NEGs),
		LastSyncTime:          prev.LastSyncTime,
	}
	init := condition(ConditionInitialized, obs.Initialized, ReasonInitializationSuccessful, ReasonInitializationFailed)
	next.Conditions = append(next.Conditions, withTransition(init, prev.FindCondition(ConditionInitialized), now))
	if obs.Synced != nil {
		synced := condition(ConditionSynced, *obs.Synced, ReasonSyncSuccessful, ReasonSyncFailed)
		next.Conditions = append(next.Conditions, withTransition(synced, prev.FindCondition(ConditionSynced), now))
	} else if c := prev.FindCondition(ConditionSynced); c != nil {
		next.Conditions = append(next.Conditions, *c)
	}
	for _, c := range prev.Conditions {
		if c.Type != ConditionInitialized && c.Type != ConditionSynced {
			next.Conditions = append(next.Conditions, c)
		}
	}
	if StatusEqual(prev, next) {
		return prev, false
	}
	next.LastSyncTime = now
	return next, true
}

// StatusEqual reports whether a and b say the same, ignoring lastSyncTime and the order of
// NEGs and conditions.
func StatusEqual(a, b ServiceNetworkEndpointGroupStatus) bool {
	if !slices.Equal(sortedNEGs(a.NetworkEndpointGroups), sortedNEGs(b.NetworkEndpointGroups)) {
		return false
	}
	if len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for _, ca := range a.Conditions {
		cb := b.FindCondition(ca.Type)
		if cb == nil || ca.Status != cb.Status || ca.Reason != cb.Reason || ca.Message != cb.Message ||
			ca.ObservedGeneration != cb.ObservedGeneration || !ca.LastTransitionTime.Equal(&cb.LastTransitionTime) {
			return false
		}
	}
	return true
}

// condition renders a check as a condition (without transition time).
func condition(typ string, c Check, okReason, failReason string) Condition {
	if c.OK {
		return Condition{Type: typ, Status: corev1.ConditionTrue, Reason: okReason, Message: c.Message}
	}
	return Condition{Type: typ, Status: corev1.ConditionFalse, Reason: failReason, Message: c.Message}
}

// withTransition sets c's lastTransitionTime: prev's when the status did not flip, else now.
func withTransition(c Condition, prev *Condition, now metav1.Time) Condition {
	if prev != nil && prev.Status == c.Status {
		c.LastTransitionTime = prev.LastTransitionTime
	} else {
		c.LastTransitionTime = now
	}
	return c
}

// sortedNEGs returns a copy of negs ordered by selfLink (so by zone), then id.
func sortedNEGs(negs []NegObjectReference) []NegObjectReference {
	if len(negs) == 0 {
		return nil
	}
	out := slices.Clone(negs)
	slices.SortFunc(out, func(a, b NegObjectReference) int {
		if c := strings.Compare(a.SelfLink, b.SelfLink); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Zone returns the zone named in a NEG selfLink (…/zones/<zone>/networkEndpointGroups/…), or "".
func Zone(selfLink string) string {
	parts := strings.Split(selfLink, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "zones" {
			return parts[i+1]
		}
	}
	return ""
}
