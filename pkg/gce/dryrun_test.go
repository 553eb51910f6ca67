package gce_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestDryRun: reads reach the emulator, mutations make no request at all and are reported to
// observe; a created NEG comes back built from the spec.
func TestDryRun(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	if err := e.srv.AddInstance(zoneA, fakegce.InstanceSpec{Name: "vm-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	// A real NEG to read, created through the real adapter.
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "real", Description: "d"}); err != nil {
		t.Fatal(err)
	}
	ep := neg.Endpoint{Instance: "vm-1", IP: "10.8.0.5", Port: 80}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetCounts()

	var mu sync.Mutex
	var observed []string
	dry := gce.DryRun(e.cloud, func(m string) {
		mu.Lock()
		defer mu.Unlock()
		observed = append(observed, m)
	})

	// Reads pass through.
	if dry.Project() != project {
		t.Errorf("Project() = %q", dry.Project())
	}
	if n, err := dry.GetNEG(ctx, zoneA, "real"); err != nil || n.Description != "d" {
		t.Errorf("GetNEG = %+v, %v", n, err)
	}
	if negs, err := dry.ListNEGs(ctx); err != nil || len(negs) != 1 {
		t.Errorf("ListNEGs = %v, %v", negs, err)
	}
	if eps, err := dry.ListNetworkEndpoints(ctx, zoneA, "real", false); err != nil || len(eps) != 1 || eps[0].Endpoint != ep {
		t.Errorf("ListNetworkEndpoints = %v, %v", eps, err)
	}
	reads := e.srv.Counts()

	// Mutations succeed without a single request.
	spec := gce.NEGSpec{Name: "dry", Description: `{"cluster-uid":"u"}`, Network: "default", Subnetwork: "sub"}
	created, err := dry.CreateNEG(ctx, zoneB, spec)
	if err != nil {
		t.Fatalf("CreateNEG: %v", err)
	}
	want := gce.NEG{Name: "dry", Zone: zoneB, SelfLink: gce.NEGURL(project, zoneB, "dry"), Description: spec.Description,
		Type: gce.TypeGCEVMIPPort, Network: "default", Subnetwork: "sub"}
	if diff := cmp.Diff(want, *created); diff != "" {
		t.Errorf("CreateNEG (-want +got):\n%s", diff)
	}
	if err := dry.AttachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{{Instance: "vm-1", IP: "10.8.0.6", Port: 80}}); err != nil {
		t.Errorf("Attach: %v", err)
	}
	if err := dry.DetachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep}); err != nil {
		t.Errorf("Detach: %v", err)
	}
	if err := dry.DeleteNEG(ctx, zoneA, "real"); err != nil {
		t.Errorf("DeleteNEG: %v", err)
	}
	if after := e.srv.Counts(); !mapsEqual(after, reads) {
		t.Errorf("mutations made requests: before %v, after %v", reads, after)
	}
	for _, m := range []string{mInsert, mAttach, mDetach, mDelete} {
		if n := e.srv.Counts()[m]; n != 0 {
			t.Errorf("%s called %d times in dry run", m, n)
		}
	}
	wantObserved := []string{"networkEndpointGroups.insert", "networkEndpointGroups.attachNetworkEndpoints",
		"networkEndpointGroups.detachNetworkEndpoints", "networkEndpointGroups.delete"}
	if !slices.Equal(observed, wantObserved) {
		t.Errorf("observed %v, want %v", observed, wantObserved)
	}

	// Nothing changed in GCE.
	if eps, ok := e.srv.NEGEndpoints(zoneA, "real"); !ok || len(eps) != 1 || eps[0] != ep {
		t.Errorf("real NEG changed: %v %v", eps, ok)
	}
	if _, ok := e.srv.NEGEndpoints(zoneB, "dry"); ok {
		t.Error("dry-run NEG exists in GCE")
	}

	// The wrapper believes its own writes: the created NEG exists with what was attached to it,
	// the deleted one is gone, and endpoint changes show in listings.
	if err := dry.AttachNetworkEndpoints(ctx, zoneB, "dry", []neg.Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	if n, err := dry.GetNEG(ctx, zoneB, "dry"); err != nil || !cmp.Equal(*n, want) {
		t.Errorf("GetNEG of the dry-run NEG: %+v, %v", n, err)
	}
	if eps, err := dry.ListNetworkEndpoints(ctx, zoneB, "dry", false); err != nil || len(eps) != 1 || eps[0].Endpoint != ep {
		t.Errorf("endpoints of the dry-run NEG: %v, %v", eps, err)
	}
	if _, err := dry.GetNEG(ctx, zoneA, "real"); !gce.IsNotFound(err) {
		t.Errorf("GetNEG of a NEG deleted in dry run: %v, want NotFound", err)
	}
	if _, err := dry.ListNetworkEndpoints(ctx, zoneA, "real", false); !gce.IsNotFound(err) {
		t.Errorf("listing a NEG deleted in dry run: %v, want NotFound", err)
	}
	if negs, err := dry.ListNEGs(ctx); err != nil || len(negs) != 1 || negs[0].Name != "dry" {
		t.Errorf("ListNEGs = %v, %v; want only the dry-run NEG", negs, err)
	}

	// Endpoint changes on a real NEG overlay its listing.
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "real2"}); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "real2", []neg.Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	ep2 := neg.Endpoint{Instance: "vm-1", IP: "10.8.0.7", Port: 80}
	if err := dry.DetachNetworkEndpoints(ctx, zoneA, "real2", []neg.Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	if err := dry.AttachNetworkEndpoints(ctx, zoneA, "real2", []neg.Endpoint{ep2}); err != nil {
		t.Fatal(err)
	}
	if eps, err := dry.ListNetworkEndpoints(ctx, zoneA, "real2", false); err != nil || len(eps) != 1 || eps[0].Endpoint != ep2 {
		t.Errorf("overlaid listing %v, %v; want only %v", eps, err, ep2)
	}
	if eps, _ := e.srv.NEGEndpoints(zoneA, "real2"); len(eps) != 1 || eps[0] != ep {
		t.Errorf("GCE changed: %v", eps)
	}

	// Since the dry run started, the only mutations GCE saw are real2's setup through the real
	// adapter.
	got := countsSince(e.srv.Counts(), reads)
	for _, m := range []string{mInsert, mAttach, mDetach, mDelete} {
		want := map[string]int{mInsert: 1, mAttach: 1}[m]
		if got[m] != want {
			t.Errorf("%s: %d requests since the dry run started, want %d", m, got[m], want)
		}
	}

	// A nil observer is allowed.
	if err := gce.DryRun(e.cloud, nil).DeleteNEG(ctx, zoneA, "real"); err != nil {
		t.Error(err)
	}
}

// countsSince returns after − before per method.
func countsSince(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDryRunSizes: ListNEGs sizes include the pretended changes, so a controller comparing sizes
// with what it believes attached finds no drift in dry run; after a change by hand, one listing
// of the NEG makes the sizes exact again.
func TestDryRunSizes(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	if err := e.srv.AddInstance(zoneA, fakegce.InstanceSpec{Name: "vm-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	ep := func(i int) neg.Endpoint {
		return neg.Endpoint{Instance: "vm-1", IP: fmt.Sprintf("10.8.0.%d", i), Port: 80}
	}
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "real"}); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep(1)}); err != nil {
		t.Fatal(err)
	}
	dry := gce.DryRun(e.cloud, nil)
	sizes := func() map[string]int64 {
		t.Helper()
		negs, err := dry.ListNEGs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, n := range negs {
			out[n.Name] = n.Size
		}
		return out
	}
	listed := func(name string) int {
		t.Helper()
		eps, err := dry.ListNetworkEndpoints(ctx, zoneA, name, false)
		if err != nil {
			t.Fatal(err)
		}
		return len(eps)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := dry.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "dry"})
	must(err)
	must(dry.AttachNetworkEndpoints(ctx, zoneA, "dry", []neg.Endpoint{ep(5)}))
	must(dry.AttachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep(2), ep(3)}))
	must(dry.DetachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep(1)}))
	if got, want := sizes(), map[string]int64{"real": 2, "dry": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sizes %v, want %v", got, want)
	}
	if n := listed("real"); n != 2 {
		t.Errorf("real lists %d endpoints, want 2", n)
	}

	// By hand: the endpoint the dry run pretended to detach is really detached.
	must(e.cloud.DetachNetworkEndpoints(ctx, zoneA, "real", []neg.Endpoint{ep(1)}))
	if got := sizes()["real"]; got != 1 {
		t.Errorf("size after the change by hand = %d, want 1 (stale until the NEG is listed)", got)
	}
	if n := listed("real"); n != 2 {
		t.Errorf("real lists %d endpoints, want 2", n)
	}
	if got := sizes()["real"]; got != 2 {
		t.Errorf("size after listing = %d, want 2 (the listing's count)", got)
	}
}
