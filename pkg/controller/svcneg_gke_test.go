package controller

// Living next to GKE's NEG controller: its objects, its CRD (no status subresource) and a
// cluster where the svcneg RBAC is missing.

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// gkeSvcNEG returns an object as GKE's NEG controller makes it for web's port p: GKE's labels,
// its finalizer and a controller reference to the Service, but no mark of ours.
func gkeSvcNEG(p int32) *svcneg.ServiceNetworkEndpointGroup {
	return &svcneg.ServiceNetworkEndpointGroup{
		TypeMeta: metav1.TypeMeta{APIVersion: svcneg.GroupVersion.String(), Kind: svcneg.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: negName("web", p),
			Labels: map[string]string{svcneg.LabelManagedBy: svcneg.ManagedByValue,
				svcneg.LabelServiceName: "web", svcneg.LabelServicePort: fmt.Sprint(p)},
			Finalizers: []string{svcneg.GKEFinalizer},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "gke-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}}},
		Status: svcneg.ServiceNetworkEndpointGroupStatus{
			NetworkEndpointGroups: []svcneg.NegObjectReference{{ID: "1", SelfLink: "gke-link"}}},
	}
}

// writesTo returns the mutating calls that named the object name.
func (f *svcNEGFake) writesTo(name string) []string {
	var out []string
	for _, a := range f.dyn.Actions() {
		var n string
		switch a := a.(type) {
		case k8stesting.DeleteAction:
			n = a.GetName()
		case k8stesting.PatchAction:
			n = a.GetName()
		case k8stesting.UpdateAction: // also matches creates: same methods
			n = a.GetObject().(interface{ GetName() string }).GetName()
		default:
			continue
		}
		if n == name {
			out = append(out, a.GetVerb()+"/"+a.GetSubresource())
		}
	}
	return out
}

// TestSvcNEGLeavesGKEObjects: objects GKE's NEG controller made (GKE's labels and finalizer,
// no mark of ours) are never deleted, changed or stripped of the finalizer, whether their NEG
// name is no longer wanted or wanted again; the Service's other objects are still written.
func TestSvcNEGLeavesGKEObjects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		gkePort  int32
		annot    string
		oursPort int32 // the port whose object we write
	}{
		{name: "name no longer wanted", gkePort: 443, annot: `{"exposed_ports":{"80":{}}}`, oursPort: 80},
		{name: "name wanted", gkePort: 443, annot: `{"exposed_ports":{"80":{},"443":{}}}`, oursPort: 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSvcNEGFake(true, false) // GKE's CRD: no status subresource
			before, err := f.client.Create(t.Context(), gkeSvcNEG(tc.gkePort))
			if err != nil {
				t.Fatal(err)
			}
			f.dyn.ClearActions()
			e := newTestEnv(t, fakegce.Config{})
			e.addNode("node-a1", zoneA)
			e.createService(service("default", "web", tc.annot, 80, 443))
			e.setEndpoints("default", "web", []int32{80, 443}, e.pods(2, "node-a1"))
			e.start(f.tweak, 0)
			e.eventually("our object written", func() error { return e.checkSvcNEG(f, tc.oursPort, zoneA) })
			e.stop() // waits for the sync that wrote it, and would have touched GKE's object
			name := negName("web", tc.gkePort)
			if w := f.writesTo(name); len(w) > 0 {
				t.Errorf("writes to GKE's object: %v", w)
			}
			after, err := f.get(t, name)
			if err != nil {
				t.Fatalf("GKE's object: %v", err)
			}
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("GKE's object changed (-before +after):\n%s", d)
			}
		})
	}
}

// TestSvcNEGForbidden: GKE's CRD is installed but the controller may not list its objects (the
// svcneg kustomize component was not applied): NEGs work without warnings or retried syncs;
// once permitted (and the minute is up), the objects are written.
func TestSvcNEGForbidden(t *testing.T) {
	f := newSvcNEGFake(true, false)
	var mu sync.Mutex
	forbidden, lists := true, 0
	f.dyn.PrependReactor("list", svcneg.Resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		lists++
		if forbidden {
			return true, nil, apierrors.NewForbidden(svcneg.GroupVersionResource.GroupResource(), "", fmt.Errorf("no RBAC"))
		}
		return false, nil, nil
	})
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(2, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(f.tweak, 0)
	e.eventually("NEG synced", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	for i := 0; i < 3; i++ {
		e.ctrl.queue.Add(keyOf("default", "web"))
	}
	e.stop()
	if evs := e.events("default", "web", ReasonSvcNEGUpdateFailed); len(evs) > 0 {
		t.Errorf("warning recorded: %v", evs[0].Message)
	}
	mu.Lock()
	if lists != 1 {
		t.Errorf("%d list attempts, want one until the next minute", lists)
	}
	forbidden = false
	mu.Unlock()

	e.start(f.tweak, 0) // a new controller (as after a minute) lists again
	e.eventually("object written once permitted", func() error { return e.checkSvcNEG(f, 80, zoneA) })
}

// TestSvcNEGStatusSubresourceChanges: the CRD is replaced while the controller runs, gaining a
// status subresource (the server drops status from plain updates) or losing it (/status is
// NotFound). The controller notices on the next write, discovers the API again and writes the
// status the new way.
func TestSvcNEGStatusSubresourceChanges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		subresource bool // before the change
	}{
		{"subresource added", false},
		{"subresource removed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSvcNEGFake(true, tc.subresource)
			e := newTestEnv(t, fakegce.Config{})
			e.addNode("node-a1", zoneA)
			e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
			e.setEndpoints("default", "web", []int32{80}, e.pods(2, "node-a1"))
			e.start(f.tweak, 0)
			e.eventually("synced in zone A", func() error { return e.checkSvcNEG(f, 80, zoneA) })

			tracker := f.dyn.Tracker()
			gvr := svcneg.GroupVersionResource
			f.dyn.PrependReactor("update", svcneg.Resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
				u := a.(k8stesting.UpdateAction).GetObject().(*unstructured.Unstructured).DeepCopy()
				if a.GetSubresource() == "status" {
					if tc.subresource { // removed: no /status any more
						return true, nil, apierrors.NewNotFound(gvr.GroupResource(), u.GetName())
					}
					return false, nil, nil
				}
				if tc.subresource {
					return false, nil, nil
				}
				// Added: a plain update keeps the stored status.
				cur, err := tracker.Get(gvr, u.GetNamespace(), u.GetName())
				if err != nil {
					return true, nil, err
				}
				u.Object["status"] = cur.(*unstructured.Unstructured).Object["status"]
				return true, u, tracker.Update(gvr, u, u.GetNamespace())
			})
			f.disc.install(!tc.subresource)
			f.dyn.ClearActions()
			e.addNode("node-b1", zoneB) // a new zone: a new NEG, a status change
			e.eventually("synced in zones A and B", func() error { return e.checkSvcNEG(f, 80, zoneA, zoneB) })
			// The first write went the old way and failed; the status was written the new way.
			want := map[bool]string{false: "update/status", true: "update"}[tc.subresource]
			if w := f.writes(); len(w) < 2 || w[len(w)-1] != want {
				t.Errorf("writes %v: want the status written last with %s", w, want)
			}
		})
	}
}
