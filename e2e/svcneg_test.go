//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
	"github.com/neg-controller/neg-controller/test/objects"
)

const listMethod = "compute.networkEndpointGroups.listNetworkEndpoints"

// svcNEGClient reads ServiceNetworkEndpointGroups as an admin.
func svcNEGClient(t *testing.T) *svcneg.Client {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return svcneg.NewClient(dyn, env.Kube.Discovery())
}

// createTwoPortService creates Service name selecting app=selector with ports 80 and 443 (both
// to the pods' "http" port) and the NEG annotation.
func createTwoPortService(t *testing.T, ns, name, selector, negAnnotation string) *corev1.Service {
	t.Helper()
	svc := objects.Service(ns, name, selector, 80)
	svc.Annotations = map[string]string{annotation.NEGKey: negAnnotation}
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443, TargetPort: intstr.FromString(objects.PortName)})
	out, err := env.Kube.CoreV1().Services(ns).Create(ctxFor(t), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service: %v", err)
	}
	return out
}

// checkSvcNEG returns "" when the object of NEG name is complete for port of svc: GKE's
// labels, the owner reference, one reference per NEG zone as GCE has it, both conditions True.
func checkSvcNEG(t *testing.T, c *svcneg.Client, svc *corev1.Service, port int32, name string, zones []string) string {
	o, err := c.Get(ctxFor(t), svc.Namespace, name)
	if err != nil {
		return err.Error()
	}
	if d := cmp.Diff(map[string]string{"networking.gke.io/managed-by": "neg-controller", "networking.gke.io/service-name": svc.Name,
		"networking.gke.io/service-port": fmt.Sprint(port), "neg-controller.io/created-by": "neg-controller"}, o.Labels); d != "" {
		return "labels (-want +got):\n" + d
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}}
	if d := cmp.Diff(owner, o.OwnerReferences); d != "" {
		return "ownerReferences (-want +got):\n" + d
	}
	if len(o.Finalizers) > 0 {
		return fmt.Sprintf("finalizers %v", o.Finalizers)
	}
	var want []svcneg.NegObjectReference
	for _, z := range zones {
		n, err := env.Compute.NetworkEndpointGroups.Get(env.Project, z, name).Context(ctxFor(t)).Do()
		if err != nil {
			return err.Error()
		}
		want = append(want, svcneg.NegObjectReference{ID: fmt.Sprint(n.Id), SelfLink: n.SelfLink,
			NetworkEndpointType: "GCE_VM_IP_PORT", State: "ACTIVE"})
	}
	if d := cmp.Diff(want, o.Status.NetworkEndpointGroups); d != "" {
		return "status.networkEndpointGroups (-want +got):\n" + d
	}
	for _, z := range zones {
		if !strings.Contains(fmt.Sprint(o.Status.NetworkEndpointGroups), "/zones/"+z+"/") {
			return "no selfLink names zone " + z
		}
	}
	for typ, reason := range map[string]string{"Initialized": "NegInitializationSuccessful", "Synced": "NegSyncSuccessful"} {
		c := o.Status.FindCondition(typ)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != reason || c.LastTransitionTime.IsZero() {
			return fmt.Sprintf("condition %s = %+v", typ, c)
		}
	}
	if o.Status.LastSyncTime.IsZero() {
		return "no lastSyncTime"
	}
	return ""
}

// expectSvcNEG waits until checkSvcNEG passes.
func expectSvcNEG(t *testing.T, c *svcneg.Client, svc *corev1.Service, port int32, name string) *svcneg.ServiceNetworkEndpointGroup {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("svcneg %s/%s complete", svc.Namespace, name), func() (bool, string) {
		msg := checkSvcNEG(t, c, svc, port, name, initialZones)
		return msg == "", msg
	})
	o, err := c.Get(ctxFor(t), svc.Namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// expectNoSvcNEG waits until the object is gone.
func expectNoSvcNEG(t *testing.T, c *svcneg.Client, ns, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "svcneg "+ns+"/"+name+" deleted", func() (bool, string) {
		_, err := c.Get(ctxFor(t), ns, name)
		return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})
}

// TestSvcNEGLifecycle: one ServiceNetworkEndpointGroup per port with GKE's labels, owner and
// per-zone NEG references, conditions kubectl can wait on; no write while nothing changes (also
// across a restart); deleted with its port, its annotation, its Service.
func TestSvcNEGLifecycle(t *testing.T) {
	ns := newNamespace(t)
	c := svcNEGClient(t)
	createDeployment(t, ns, "web", 4, 8080)
	svc := createTwoPortService(t, ns, "web", "web", `{"exposed_ports":{"80":{},"443":{}}}`)
	neg80 := expectSynced(t, ns, "web", "web", 80, 8080, 4, 90*time.Second)
	neg443 := expectSynced(t, ns, "web", "web", 443, 8080, 4, 90*time.Second)
	o80 := expectSvcNEG(t, c, svc, 80, neg80)
	o443 := expectSvcNEG(t, c, svc, 443, neg443)

	// kubectl wait on the condition, and GKE's columns (its CRD has no printer columns).
	if out, err := env.Kubectl(ctxFor(t), nil, "wait", "-n", ns, "--for=condition=Synced", "--timeout=30s", "svcneg/"+neg80); err != nil {
		t.Errorf("kubectl wait: %v %s", err, out)
	}
	out, err := env.Kubectl(ctxFor(t), nil, "get", "svcneg", "-n", ns, "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get svcneg -o wide:\n%s", out)
	header := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	if d := cmp.Diff([]string{"NAME", "AGE"}, header); d != "" {
		t.Errorf("columns (-want +got):\n%s", d)
	}

	// Scaling changes endpoints, not the objects; neither does a sync that changes nothing.
	scale(t, ns, "web", 6)
	expectSynced(t, ns, "web", "web", 80, 8080, 6, 90*time.Second)
	expectSynced(t, ns, "web", "web", 443, 8080, 6, 90*time.Second)
	touchService(t, ns, "web")
	time.Sleep(3 * time.Second)
	for _, before := range []*svcneg.ServiceNetworkEndpointGroup{o80, o443} {
		after, err := c.Get(ctxFor(t), ns, before.Name)
		if err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion {
			t.Errorf("svcneg %s rewritten without a change: %s", before.Name, cmp.Diff(before, after))
		}
	}

	// A restarted controller reads the objects and rewrites none.
	mark := time.Now()
	restartController(t)
	waitFor(t, time.Minute, "the restarted controller listed the Service's NEGs", func() (bool, string) {
		n := 0
		for _, r := range env.GCE.Requests() {
			if !r.Time.Before(mark) && r.Method == listMethod && (strings.Contains(r.Path, neg80) || strings.Contains(r.Path, neg443)) {
				n++
			}
		}
		return n >= 2*len(initialZones), fmt.Sprintf("%d listings", n)
	})
	time.Sleep(2 * time.Second)
	for _, before := range []*svcneg.ServiceNetworkEndpointGroup{o80, o443} {
		after, err := c.Get(ctxFor(t), ns, before.Name)
		if err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion {
			t.Errorf("svcneg %s rewritten after a restart: %s", before.Name, cmp.Diff(before, after))
		}
	}

	// Port removed: its NEGs and its object go; the other stays.
	setNEGAnnotation(t, ns, "web", `{"exposed_ports":{"80":{}}}`)
	expectNoNEG(t, neg443, 90*time.Second)
	expectNoSvcNEG(t, c, ns, neg443, 30*time.Second)
	if msg := checkSvcNEG(t, c, svc, 80, neg80, initialZones); msg != "" {
		t.Errorf("port 80's object disturbed: %s", msg)
	}

	// Annotation removed: everything goes.
	setNEGAnnotation(t, ns, "web", "")
	expectNoNEG(t, neg80, 90*time.Second)
	expectNoSvcNEG(t, c, ns, neg80, 30*time.Second)
}

// TestSvcNEGDeletedWithService: deleting the Service deletes its objects (owner reference
// garbage collection, no finalizer holds them).
func TestSvcNEGDeletedWithService(t *testing.T) {
	ns := newNamespace(t)
	c := svcNEGClient(t)
	createDeployment(t, ns, "api", 2, 8080)
	svc := createService(t, ns, "api", "api", standalone80, 80)
	name := expectSynced(t, ns, "api", "api", 80, 8080, 2, 90*time.Second)
	expectSvcNEG(t, c, svc, 80, name)
	if err := env.Kube.CoreV1().Services(ns).Delete(ctxFor(t), "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNoSvcNEG(t, c, ns, name, time.Minute)
	expectNoNEG(t, name, 90*time.Second)
}

// TestSvcNEGDiscovery: the controller finds the CRD, without a status subresource (GKE's
// shape), and a group version that is not served (a cluster without the CRD) is NotFound,
// which the controller takes as "not installed" (logged once), not as an error.
func TestSvcNEGDiscovery(t *testing.T) {
	s, err := svcNEGClient(t).Discover(ctxFor(t))
	if err != nil || s != (svcneg.Support{Installed: true, StatusSubresource: false}) {
		t.Errorf("Discover = %+v, %v", s, err)
	}
	_, err = env.Kube.Discovery().ServerResourcesForGroupVersion("networking.gke.io/v1alpha9")
	if !apierrors.IsNotFound(err) {
		t.Errorf("an unserved group version: %v, want NotFound", err)
	}
}

// TestSvcNEGCRDTakesGKEWrites: the shipped CRD keeps what GKE's NEG controller writes the way
// it writes it (kubernetes/ingress-gce pkg/neg/syncers: a JSON merge patch of the object, status
// included, and a null lastSyncTime of a zero time), every status field GKE sets survives,
// and GKE's finalizer stays until GKE removes it with a patch.
func TestSvcNEGCRDTakesGKEWrites(t *testing.T) {
	ctx := ctxFor(t)
	ns := newNamespace(t)
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	res := dyn.Resource(svcneg.GroupVersionResource).Namespace(ns)
	obj := &svcneg.ServiceNetworkEndpointGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k8s1-gke-style",
		Labels:     map[string]string{svcneg.LabelManagedBy: svcneg.ManagedByValue, svcneg.LabelServiceName: "web", svcneg.LabelServicePort: "80"},
		Finalizers: []string{svcneg.GKEFinalizer}}}
	u, err := svcneg.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = res.Patch(ctx, obj.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})
	ts := "2026-01-02T03:04:05Z"
	patch := `{"status":{"networkEndpointGroups":[{"id":"123","selfLink":"https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/k8s1-gke-style",` +
		`"networkEndpointType":"GCE_VM_IP_PORT","subnetURL":"https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/s","state":"ACTIVE"}],` +
		`"conditions":[{"type":"Initialized","status":"True","lastTransitionTime":"` + ts + `","reason":"NegInitializationSuccessful","message":""}],` +
		`"lastSyncTime":null}}`
	if _, err := res.Patch(ctx, obj.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("GKE's status patch: %v", err)
	}
	patch = `{"status":{"lastSyncTime":"` + ts + `"}}`
	if _, err := res.Patch(ctx, obj.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("GKE's lastSyncTime patch: %v", err)
	}
	got, err := svcNEGClient(t).Get(ctx, ns, obj.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := []svcneg.NegObjectReference{{ID: "123", SelfLink: "https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/k8s1-gke-style",
		NetworkEndpointType: "GCE_VM_IP_PORT", SubnetURL: "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/s", State: "ACTIVE"}}
	if d := cmp.Diff(want, got.Status.NetworkEndpointGroups); d != "" {
		t.Errorf("NEG refs after GKE's patch (-want +got):\n%s", d)
	}
	if c := got.Status.FindCondition(svcneg.ConditionInitialized); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("condition after GKE's patch: %+v", got.Status.Conditions)
	}
	if got.Status.LastSyncTime.UTC().Format(time.RFC3339) != ts {
		t.Errorf("lastSyncTime %v, want %s", got.Status.LastSyncTime, ts)
	}
	if !slices.Contains(got.Finalizers, svcneg.GKEFinalizer) {
		t.Errorf("finalizers %v", got.Finalizers)
	}
}

// touchService changes an unrelated annotation of a Service, which makes the controller sync it.
func touchService(t *testing.T, ns, name string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"e2e/touched":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := env.Kube.CoreV1().Services(ns).Patch(ctxFor(t), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}
