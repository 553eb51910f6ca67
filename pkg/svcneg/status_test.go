package svcneg

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var (
	t0 = metav1.NewTime(time.Date(2026, 8, 26, 20, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(t0.Add(time.Minute))
	t2 = metav1.NewTime(t0.Add(2 * time.Minute))

	negA = NegObjectReference{ID: "1", SelfLink: "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/networkEndpointGroups/n",
		NetworkEndpointType: TypeGCEVMIPPort, State: StateActive}
	negB = NegObjectReference{ID: "2", SelfLink: "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-b/networkEndpointGroups/n",
		NetworkEndpointType: TypeGCEVMIPPort, State: StateActive}
)

func cond(typ string, st corev1.ConditionStatus, reason, msg string, at metav1.Time) Condition {
	return Condition{Type: typ, Status: st, Reason: reason, Message: msg, LastTransitionTime: at}
}

func TestNextStatus(t *testing.T) {
	ok := Check{OK: true}
	initTrue := func(at metav1.Time) Condition {
		return cond(ConditionInitialized, corev1.ConditionTrue, ReasonInitializationSuccessful, "", at)
	}
	syncTrue := func(at metav1.Time) Condition {
		return cond(ConditionSynced, corev1.ConditionTrue, ReasonSyncSuccessful, "", at)
	}
	settled := ServiceNetworkEndpointGroupStatus{
		NetworkEndpointGroups: []NegObjectReference{negA, negB},
		Conditions:            []Condition{initTrue(t0), syncTrue(t0)},
		LastSyncTime:          t0,
	}
	cases := []struct {
		name        string
		prev        ServiceNetworkEndpointGroupStatus
		obs         Observed
		want        ServiceNetworkEndpointGroupStatus
		wantChanged bool
	}{{
		name: "first status: NEGs sorted, conditions set at now, Synced unknown left out",
		obs:  Observed{NEGs: []NegObjectReference{negB, negA}, Initialized: ok},
		want: ServiceNetworkEndpointGroupStatus{NetworkEndpointGroups: []NegObjectReference{negA, negB},
			Conditions: []Condition{initTrue(t1)}, LastSyncTime: t1},
		wantChanged: true,
	}, {
		name: "nothing changed (NEGs in another order): no write, times kept",
		prev: settled,
		obs:  Observed{NEGs: []NegObjectReference{negB, negA}, Initialized: ok, Synced: &ok},
		want: settled,
	}, {
		name: "Synced unknown keeps the previous Synced condition",
		prev: settled,
		obs:  Observed{NEGs: []NegObjectReference{negA, negB}, Initialized: ok},
		want: settled,
	}, {
		name: "a NEG gone: refs change, conditions keep their times",
		prev: settled,
		obs:  Observed{NEGs: []NegObjectReference{negA}, Initialized: ok, Synced: &ok},
		want: ServiceNetworkEndpointGroupStatus{NetworkEndpointGroups: []NegObjectReference{negA},
			Conditions: []Condition{initTrue(t0), syncTrue(t0)}, LastSyncTime: t1},
		wantChanged: true,
	}, {
		name: "Synced flips to False: transition time now",
		prev: settled,
		obs:  Observed{NEGs: []NegObjectReference{negA, negB}, Initialized: ok, Synced: &Check{Message: "boom"}},
		want: ServiceNetworkEndpointGroupStatus{NetworkEndpointGroups: []NegObjectReference{negA, negB},
			Conditions:   []Condition{initTrue(t0), cond(ConditionSynced, corev1.ConditionFalse, ReasonSyncFailed, "boom", t1)},
			LastSyncTime: t1},
		wantChanged: true,
	}, {
		name: "message changes without a flip: transition time kept",
		prev: ServiceNetworkEndpointGroupStatus{NetworkEndpointGroups: []NegObjectReference{negA},
			Conditions:   []Condition{cond(ConditionInitialized, corev1.ConditionFalse, ReasonInitializationFailed, "zone b: quota", t0)},
			LastSyncTime: t0},
		obs: Observed{NEGs: []NegObjectReference{negA}, Initialized: Check{Message: "zone b: 403"}},
		want: ServiceNetworkEndpointGroupStatus{NetworkEndpointGroups: []NegObjectReference{negA},
			Conditions:   []Condition{cond(ConditionInitialized, corev1.ConditionFalse, ReasonInitializationFailed, "zone b: 403", t0)},
			LastSyncTime: t2},
		wantChanged: true,
	}, {
		name: "conditions of other types are kept",
		prev: ServiceNetworkEndpointGroupStatus{Conditions: []Condition{cond("BackendNotAttached", corev1.ConditionTrue, "X", "", t0)}},
		obs:  Observed{Initialized: ok, Synced: &ok},
		want: ServiceNetworkEndpointGroupStatus{Conditions: []Condition{initTrue(t1), syncTrue(t1),
			cond("BackendNotAttached", corev1.ConditionTrue, "X", "", t0)}, LastSyncTime: t1},
		wantChanged: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t1
			if tc.name == "message changes without a flip: transition time kept" {
				now = t2
			}
			prevCopy := (&ServiceNetworkEndpointGroup{Status: tc.prev}).DeepCopy().Status
			got, changed := NextStatus(tc.prev, tc.obs, now)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("status (-want +got):\n%s", d)
			}
			if d := cmp.Diff(prevCopy, tc.prev); d != "" {
				t.Errorf("prev modified:\n%s", d)
			}
			// Applying the same observation again is always a no-op.
			if _, again := NextStatus(got, tc.obs, t2); again {
				t.Error("second application changed the status again")
			}
		})
	}
}

func TestSetOwner(t *testing.T) {
	owner := Owner{Namespace: "ns", Name: "web", UID: "uid-2", Port: 80}
	want := metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: "web", UID: "uid-2",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}

	o := New("k8s1-neg", owner)
	if d := cmp.Diff(map[string]string{LabelManagedBy: ManagedByValue, LabelServiceName: "web", LabelServicePort: "80",
		LabelCreatedBy: CreatedByValue}, o.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]metav1.OwnerReference{want}, o.OwnerReferences); d != "" {
		t.Errorf("ownerReferences (-want +got):\n%s", d)
	}
	if o.Namespace != "ns" || o.Name != "k8s1-neg" || o.Kind != Kind || o.APIVersion != "networking.gke.io/v1beta1" || len(o.Finalizers) != 0 {
		t.Errorf("object %+v", o)
	}
	if SetOwner(o, owner) {
		t.Error("SetOwner on an up-to-date object reported a change")
	}

	// Ours from an earlier Service of the same name (stale controller reference), with a user
	// label, a finalizer and a non-controller reference kept.
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "cm"}
	old := &ServiceNetworkEndpointGroup{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelServiceName: "web", LabelServicePort: "8080",
			LabelCreatedBy: CreatedByValue, "team": "a"},
		Finalizers: []string{"other", GKEFinalizer},
		OwnerReferences: []metav1.OwnerReference{other, {APIVersion: "v1", Kind: "Service", Name: "web", UID: "uid-1",
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
	}}
	if !BelongsTo(old, "web") || BelongsTo(old, "api") {
		t.Error("BelongsTo by labels")
	}
	if !SetOwner(old, owner) {
		t.Fatal("no change reported")
	}
	if old.Labels[LabelServicePort] != "80" || old.Labels["team"] != "a" {
		t.Errorf("labels %v", old.Labels)
	}
	if d := cmp.Diff([]string{"other", GKEFinalizer}, old.Finalizers); d != "" {
		t.Errorf("finalizers (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]metav1.OwnerReference{other, want}, old.OwnerReferences); d != "" {
		t.Errorf("ownerReferences (-want +got):\n%s", d)
	}
}

func TestBelongsTo(t *testing.T) {
	gke := map[string]string{LabelManagedBy: ManagedByValue, LabelServiceName: "web", LabelServicePort: "80"}
	ours := map[string]string{LabelManagedBy: ManagedByValue, LabelServiceName: "web", LabelServicePort: "80",
		LabelCreatedBy: CreatedByValue}
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		service string
		want    bool
	}{
		{"ours", ours, "web", true},
		{"ours, another Service", ours, "api", false},
		{"GKE's (same labels, no mark)", gke, "web", false},
		{"unlabelled", nil, "web", false},
		{"mark only", map[string]string{LabelCreatedBy: CreatedByValue}, "web", false},
	} {
		o := &ServiceNetworkEndpointGroup{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}
		if got := BelongsTo(o, tc.service); got != tc.want {
			t.Errorf("%s: BelongsTo = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestZone(t *testing.T) {
	if z := Zone(negB.SelfLink); z != "us-central1-b" {
		t.Errorf("Zone = %q", z)
	}
	if z := Zone("nonsense"); z != "" {
		t.Errorf("Zone = %q", z)
	}
}
