package svcneg

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func newFakeClient(t *testing.T, resources ...metav1.APIResource) (*Client, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GroupVersionResource: ListKind})
	disc := kubefake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	if len(resources) > 0 {
		disc.Resources = []*metav1.APIResourceList{{GroupVersion: GroupVersion.String(), APIResources: resources}}
	}
	return NewClient(dyn, disc), dyn
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	c, _ := newFakeClient(t)
	if s, err := c.Discover(ctx); err != nil || s.Installed {
		t.Errorf("no CRD: %+v %v", s, err)
	}
	c, _ = newFakeClient(t, metav1.APIResource{Name: Resource, Namespaced: true, Kind: Kind})
	if s, err := c.Discover(ctx); err != nil || s != (Support{Installed: true}) {
		t.Errorf("GKE's CRD: %+v %v", s, err)
	}
	c, _ = newFakeClient(t, metav1.APIResource{Name: Resource, Namespaced: true, Kind: Kind},
		metav1.APIResource{Name: Resource + "/status", Namespaced: true, Kind: Kind})
	if s, err := c.Discover(ctx); err != nil || s != (Support{Installed: true, StatusSubresource: true}) {
		t.Errorf("our CRD: %+v %v", s, err)
	}
}

// TestClientRoundTrip: typed objects survive create, get, list, update and updateStatus through
// the dynamic client unchanged.
func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, _ := newFakeClient(t)
	o := New("k8s1-a-ns-web-80-b", Owner{Namespace: "ns", Name: "web", UID: "u", Port: 80})
	created, err := c.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	created.Status = ServiceNetworkEndpointGroupStatus{
		NetworkEndpointGroups: []NegObjectReference{negA},
		Conditions:            []Condition{cond(ConditionSynced, corev1.ConditionTrue, ReasonSyncSuccessful, "", t0)},
		LastSyncTime:          t1,
	}
	updated, err := c.UpdateStatus(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "ns", o.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(updated, got); d != "" {
		t.Errorf("get (-updated +got):\n%s", d)
	}
	if d := cmp.Diff(created.Status, got.Status); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
	if d := cmp.Diff(o.Labels, got.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	got.Labels["x"] = "y"
	if _, err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, LabelManagedBy+"="+ManagedByValue)
	if err != nil || len(list) != 1 || list[0].Labels["x"] != "y" {
		t.Fatalf("list: %v %v", list, err)
	}
	// (The fake ignores UID preconditions; e2e covers them against a real API server.)
	if err := c.Delete(ctx, "ns", o.Name, got.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "ns", o.Name); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
	if err := c.Delete(ctx, "ns", o.Name, ""); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
}

// TestUnstructuredShape: the wire format is GKE's (id as a string, lastSyncTime, an empty spec).
func TestUnstructuredShape(t *testing.T) {
	o := New("n", Owner{Namespace: "ns", Name: "web", UID: "u", Port: 80})
	o.Status.NetworkEndpointGroups = []NegObjectReference{negA}
	o.Status.LastSyncTime = t1
	u, err := ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "networking.gke.io/v1beta1" || u.GetKind() != Kind {
		t.Errorf("apiVersion/kind %s %s", u.GetAPIVersion(), u.GetKind())
	}
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok || len(spec) != 0 {
		t.Errorf("spec = %#v", u.Object["spec"])
	}
	st := u.Object["status"].(map[string]any)
	if st["lastSyncTime"] != "2026-08-26T20:01:00Z" {
		t.Errorf("lastSyncTime = %#v", st["lastSyncTime"])
	}
	ref := st["networkEndpointGroups"].([]any)[0].(map[string]any)
	if d := cmp.Diff(map[string]any{"id": "1", "selfLink": negA.SelfLink, "networkEndpointType": "GCE_VM_IP_PORT", "state": "ACTIVE"}, ref); d != "" {
		t.Errorf("NEG ref (-want +got):\n%s", d)
	}
}
