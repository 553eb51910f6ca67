package gce_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestHybridNEG: a NON_GCP_PRIVATE_IP_PORT NEG through the adapter: created with a network and
// no subnetwork, endpoints attached, listed and detached without instance, all against the
// emulator's hybrid rules (which refuse an instance).
func TestHybridNEG(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	n, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "hyb", Type: gce.TypeNonGCPPrivateIPPort,
		Description: `{"cluster-uid":"u"}`, Network: "default"})
	if err != nil {
		t.Fatalf("CreateNEG: %v", err)
	}
	if n.Type != gce.TypeNonGCPPrivateIPPort || n.Subnetwork != "" || gce.ResourcePath(n.Network) != "projects/"+project+"/global/networks/default" {
		t.Errorf("created = %+v", n)
	}
	eps := []neg.Endpoint{{IP: "192.168.10.5", Port: 8080}, {IP: "192.168.10.6", Port: 8080}}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "hyb", eps); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	listed, err := e.cloud.ListNetworkEndpoints(ctx, zoneA, "hyb", false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]gce.EndpointHealth{{Endpoint: eps[0]}, {Endpoint: eps[1]}}, listed); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	if err := e.cloud.DetachNetworkEndpoints(ctx, zoneA, "hyb", eps[:1]); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if got, _ := e.srv.NEGEndpoints(zoneA, "hyb"); !cmp.Equal(got, eps[1:]) {
		t.Errorf("after detach: %v", got)
	}
	// An endpoint with an instance is refused by GCE's hybrid rules (emulated), as a bad batch.
	err = e.cloud.AttachNetworkEndpoints(ctx, zoneA, "hyb", []neg.Endpoint{{Instance: "vm", IP: "192.168.10.7", Port: 80}})
	if gce.Classify(err) != gce.Invalid {
		t.Errorf("attach with instance: %v (class %v), want Invalid", err, gce.Classify(err))
	}
	got, err := e.cloud.GetNEG(ctx, zoneA, "hyb")
	if err != nil || got.Type != gce.TypeNonGCPPrivateIPPort || got.Size != 1 {
		t.Errorf("GetNEG = %+v, %v", got, err)
	}
}

// TestHybridNEGSubnetworkRefused: the adapter (and its dry-run wrapper) refuse a hybrid spec
// with a subnetwork without calling GCE.
func TestHybridNEGSubnetworkRefused(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	spec := gce.NEGSpec{Name: "hyb", Type: gce.TypeNonGCPPrivateIPPort, Network: "default", Subnetwork: "default"}
	before := len(e.srv.Requests())
	for name, c := range map[string]gce.Cloud{"adapter": e.cloud, "dry run": gce.DryRun(e.cloud, nil)} {
		if _, err := c.CreateNEG(ctx, zoneA, spec); !errors.Is(err, gce.ErrHybridSubnetwork) || gce.Classify(err) != gce.Permanent {
			t.Errorf("%s: CreateNEG = %v, want ErrHybridSubnetwork (Permanent)", name, err)
		}
	}
	if n := len(e.srv.Requests()) - before; n != 0 {
		t.Errorf("%d requests made", n)
	}
}

// TestNEGAnnotations: the NEG resource's annotations field comes back from get and the
// aggregated listing (other controllers mark their NEGs there).
func TestNEGAnnotations(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	marks := map[string]string{"created-by": "k8s-hybrid-neg-controller", "k8s-service": "default/web"}
	op, err := e.cloud.Service().NetworkEndpointGroups.Insert(project, zoneB, &compute.NetworkEndpointGroup{Name: "theirs",
		NetworkEndpointType: gce.TypeNonGCPPrivateIPPort, Description: "Kubernetes Service", Annotations: marks}).Do()
	if err != nil || op.Status != "DONE" {
		t.Fatalf("insert: %+v, %v", op, err)
	}
	got, err := e.cloud.GetNEG(ctx, zoneB, "theirs")
	if err != nil || !cmp.Equal(got.Annotations, marks) {
		t.Errorf("GetNEG annotations = %+v, %v", got, err)
	}
	all, err := e.cloud.ListNEGs(ctx)
	if err != nil || len(all) != 1 || !cmp.Equal(all[0].Annotations, marks) || all[0].Description != "Kubernetes Service" {
		t.Errorf("ListNEGs = %+v, %v", all, err)
	}
}
