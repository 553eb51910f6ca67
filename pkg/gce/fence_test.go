package gce_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestFenced: while the fence is open every call reaches the emulator; once closed, mutations
// of NEGs and backend services fail with a *FencedError (class Fenced, RetryLater) without a
// request, and reads still pass through.
func TestFenced(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	if err := e.srv.AddInstance(zoneA, fakegce.InstanceSpec{Name: "vm-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	bsFixture(t, e, ctx, "", "bs", "HTTP", foreign())
	fence := gce.NewFence()
	cloud, bsc := fence.Cloud(e.cloud), fence.BackendServices(e.cloud)
	ep := neg.Endpoint{Instance: "vm-1", IP: "10.8.0.5", Port: 80}

	// Open: mutations go through.
	if _, err := cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "open"}); err != nil {
		t.Fatalf("CreateNEG while open: %v", err)
	}
	if err := cloud.AttachNetworkEndpoints(ctx, zoneA, "open", []neg.Endpoint{ep}); err != nil {
		t.Fatalf("Attach while open: %v", err)
	}
	if fence.Err() != nil {
		t.Fatalf("open fence has error %v", fence.Err())
	}

	if !fence.Close("naming UID changed") || fence.Close("second reason") {
		t.Fatal("Close must report true once, then false")
	}
	if err := fence.Err(); err == nil || !strings.Contains(err.Error(), "naming UID changed") {
		t.Fatalf("closed fence error %v, want the first reason", err)
	}
	e.srv.ResetCounts()

	// Reads pass through.
	if cloud.Project() != project {
		t.Errorf("Project() = %q", cloud.Project())
	}
	if _, err := cloud.GetNEG(ctx, zoneA, "open"); err != nil {
		t.Errorf("GetNEG: %v", err)
	}
	if _, err := cloud.ListNEGs(ctx); err != nil {
		t.Errorf("ListNEGs: %v", err)
	}
	if eps, err := cloud.ListNetworkEndpoints(ctx, zoneA, "open", false); err != nil || len(eps) != 1 {
		t.Errorf("ListNetworkEndpoints = %v, %v", eps, err)
	}
	bs, err := bsc.GetBackendService(ctx, "", "bs")
	if err != nil {
		t.Fatalf("GetBackendService: %v", err)
	}
	reads := e.srv.Counts()

	// Mutations are refused without a request.
	_, createErr := cloud.CreateNEG(ctx, zoneB, gce.NEGSpec{Name: "closed"})
	mutations := map[string]error{
		"networkEndpointGroups.insert":                 createErr,
		"networkEndpointGroups.delete":                 cloud.DeleteNEG(ctx, zoneA, "open"),
		"networkEndpointGroups.attachNetworkEndpoints": cloud.AttachNetworkEndpoints(ctx, zoneA, "open", []neg.Endpoint{ep}),
		"networkEndpointGroups.detachNetworkEndpoints": cloud.DetachNetworkEndpoints(ctx, zoneA, "open", []neg.Endpoint{ep}),
		"backendServices.patch":                        bsc.UpdateBackendService(ctx, "", bs),
	}
	for method, err := range mutations {
		var fe *gce.FencedError
		if !errors.As(err, &fe) || fe.Method != method || fe.Reason != "naming UID changed" {
			t.Errorf("%s: error %v, want a *FencedError naming the method and reason", method, err)
		}
		if c := gce.Classify(err); c != gce.Fenced || gce.Retry(c) != gce.RetryLater {
			t.Errorf("%s: class %v (%v), want Fenced (RetryLater)", method, c, gce.Retry(c))
		}
	}
	if after := e.srv.Counts(); !mapsEqual(after, reads) {
		t.Errorf("refused mutations made requests: before %v, after %v", reads, after)
	}
	if eps, ok := e.srv.NEGEndpoints(zoneA, "open"); !ok || len(eps) != 1 {
		t.Errorf("NEG changed while fenced: %v %v", eps, ok)
	}
}
