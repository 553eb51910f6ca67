package gce_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestNEGLifecycle(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 20 * time.Millisecond}, nil)
	ctx := testCtx(t)

	zones, err := e.cloud.ListZones(ctx)
	if err != nil {
		t.Fatalf("ListZones: %v", err)
	}
	if diff := cmp.Diff([]string{zoneA, zoneB, "us-central1-c"}, zones); diff != "" {
		t.Errorf("ListZones (-want +got):\n%s", diff)
	}

	spec := gce.NEGSpec{Name: "neg-1", Description: `{"cluster-uid":"u"}`, Network: "default"}
	created, err := e.cloud.CreateNEG(ctx, zoneA, spec)
	if err != nil {
		t.Fatalf("CreateNEG: %v", err)
	}
	want := gce.NEG{
		Name:        "neg-1",
		Zone:        zoneA,
		SelfLink:    gce.NEGURL(project, zoneA, "neg-1"),
		Description: spec.Description,
		Type:        gce.TypeGCEVMIPPort,
	}
	got := *created
	if got.ID == "" || got.ID == "0" {
		t.Errorf("CreateNEG returned no id: %+v", got)
	}
	if gce.ResourcePath(got.Network) != "projects/"+project+"/global/networks/default" {
		t.Errorf("network = %q", got.Network)
	}
	got.ID, got.Network, got.Subnetwork = "", "", ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateNEG (-want +got):\n%s", diff)
	}
	if n := len(e.requests(mWait)); n == 0 {
		t.Errorf("no zoneOperations.wait call although the operation took 20ms")
	}
	if n := len(e.requests(mGet)); n != 0 {
		t.Errorf("CreateNEG made %d get calls; the operation's targetLink and targetId describe the NEG", n)
	}

	_, err = e.cloud.CreateNEG(ctx, zoneA, spec)
	if !gce.IsAlreadyExists(err) {
		t.Errorf("second CreateNEG = %v (class %v), want AlreadyExists", err, gce.Classify(err))
	}
	if _, err := e.cloud.CreateNEG(ctx, zoneB, gce.NEGSpec{Name: "neg-2"}); err != nil {
		t.Fatalf("CreateNEG zone b: %v", err)
	}

	read, err := e.cloud.GetNEG(ctx, zoneA, "neg-1")
	if err != nil {
		t.Fatalf("GetNEG: %v", err)
	}
	if diff := cmp.Diff(created, read); diff != "" {
		t.Errorf("GetNEG differs from CreateNEG (-create +get):\n%s", diff)
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "missing"); !gce.IsNotFound(err) {
		t.Errorf("GetNEG(missing) = %v, want NotFound", err)
	}

	all, err := e.cloud.ListNEGs(ctx)
	if err != nil {
		t.Fatalf("ListNEGs: %v", err)
	}
	var names []string
	for _, n := range all {
		names = append(names, n.Zone+"/"+n.Name)
	}
	if diff := cmp.Diff([]string{zoneA + "/neg-1", zoneB + "/neg-2"}, names); diff != "" {
		t.Errorf("ListNEGs (-want +got):\n%s", diff)
	}

	if err := e.cloud.DeleteNEG(ctx, zoneA, "neg-1"); err != nil {
		t.Fatalf("DeleteNEG: %v", err)
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "neg-1"); !gce.IsNotFound(err) {
		t.Errorf("GetNEG after delete = %v, want NotFound", err)
	}
	if err := e.cloud.DeleteNEG(ctx, zoneA, "neg-1"); err != nil {
		t.Errorf("DeleteNEG of a missing NEG = %v, want nil", err)
	}

	if got := e.obs.op(mInsertOp + "/success"); got != 2 {
		t.Errorf("observed %d successful insert operations, want 2", got)
	}
	if got := e.obs.op(mInsertOp + "/AlreadyExists"); got != 1 {
		t.Errorf("observed %d AlreadyExists insert operations, want 1", got)
	}
}

func TestAttachDetachAndPaging(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 10 * time.Millisecond}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 2)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	eps := podEndpoints(1200)
	neg.SortEndpoints(eps)

	// Three batches (500, 500, 200) in parallel, as the executor does.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, b := range batches(eps, gce.MaxEndpointsPerCall) {
		wg.Go(func() { errs <- e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", b) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("AttachNetworkEndpoints: %v", err)
		}
	}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", eps[:501]); !errors.Is(err, gce.ErrBatchSize) {
		t.Errorf("attach of 501 endpoints = %v, want ErrBatchSize", err)
	}

	e.srv.ResetCounts()
	if diff := cmp.Diff(eps, listed(t, ctx, e.cloud, zoneA, "web")); diff != "" {
		t.Errorf("listed after attach (-want +got):\n%s", diff)
	}
	if got := e.srv.Counts()[mList]; got != 3 {
		t.Errorf("listing 1200 endpoints took %d calls, want 3 pages", got)
	}
	inFake, _ := e.srv.NEGEndpoints(zoneA, "web")
	neg.SortEndpoints(inFake)
	if diff := cmp.Diff(eps, inFake); diff != "" {
		t.Errorf("emulator state (-want +got):\n%s", diff)
	}
	if n, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil || n.Size != 1200 {
		t.Errorf("GetNEG size = %+v, %v; want 1200", n, err)
	}

	for _, b := range batches(eps[:700], gce.MaxEndpointsPerCall) {
		if err := e.cloud.DetachNetworkEndpoints(ctx, zoneA, "web", b); err != nil {
			t.Fatalf("DetachNetworkEndpoints: %v", err)
		}
	}
	if diff := cmp.Diff(eps[700:], listed(t, ctx, e.cloud, zoneA, "web")); diff != "" {
		t.Errorf("listed after detach (-want +got):\n%s", diff)
	}

	// Every mutation carried a distinct requestId (no retries happened here).
	seen := map[string]string{}
	for _, m := range []string{mInsert, mAttach, mDetach} {
		recs := e.requests(m)
		if len(recs) == 0 {
			t.Errorf("no %s in the request log", m)
		}
		for _, r := range recs {
			if r.RequestID == "" {
				t.Errorf("%s %s without requestId", m, r.Path)
			}
			if prev, dup := seen[r.RequestID]; dup {
				t.Errorf("requestId %s used by %s and %s", r.RequestID, prev, m)
			}
			seen[r.RequestID] = m
		}
	}
}

func TestAttachInvalidEndpoint(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	bad := []neg.Endpoint{{Instance: "node-0", IP: "192.168.99.1", Port: 80}}
	err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", bad)
	if !gce.IsInvalid(err) {
		t.Errorf("attach of a foreign IP = %v (class %v), want Invalid", err, gce.Classify(err))
	}
	if n := len(e.requests(mAttach)); n != 1 {
		t.Errorf("invalid attach was sent %d times, want 1 (no retry)", n)
	}
	err = e.cloud.AttachNetworkEndpoints(ctx, zoneA, "missing", podEndpoints(1))
	if !gce.IsNotFound(err) {
		t.Errorf("attach to a missing NEG = %v, want NotFound", err)
	}
}

func TestDeleteInUse(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	created, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	eps := podEndpoints(3)
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", eps); err != nil {
		t.Fatal(err)
	}

	svc := e.cloud.Service()
	hc := &compute.HealthCheck{Name: "hc", Type: "HTTP", HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT"}}
	if _, err := svc.HealthChecks.Insert(project, hc).Context(ctx).Do(); err != nil {
		t.Fatalf("inserting health check: %v", err)
	}
	bs := &compute.BackendService{
		Name:         "bs",
		HealthChecks: []string{"projects/" + project + "/global/healthChecks/hc"},
		Backends:     []*compute.Backend{{Group: created.SelfLink, BalancingMode: "RATE", MaxRatePerEndpoint: 100}},
	}
	if _, err := svc.BackendServices.Insert(project, bs).Context(ctx).Do(); err != nil {
		t.Fatalf("inserting backend service: %v", err)
	}

	err = e.cloud.DeleteNEG(ctx, zoneA, "web")
	if !gce.IsInUse(err) || gce.Retry(gce.Classify(err)) != gce.RetryLater {
		t.Errorf("DeleteNEG of a referenced NEG = %v (class %v), want InUse", err, gce.Classify(err))
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
		t.Errorf("referenced NEG is gone: %v", err)
	}

	// With health: every endpoint reports the backend service and its health check.
	items, err := e.cloud.ListNetworkEndpoints(ctx, zoneA, "web", true)
	if err != nil {
		t.Fatalf("ListNetworkEndpoints with health: %v", err)
	}
	if len(items) != len(eps) {
		t.Fatalf("listed %d endpoints, want %d", len(items), len(eps))
	}
	for _, it := range items {
		if len(it.Healths) != 1 {
			t.Errorf("%v: healths %+v, want one entry", it.Endpoint, it.Healths)
			continue
		}
		h := it.Healths[0]
		if gce.ResourcePath(h.BackendService) != "projects/"+project+"/global/backendServices/bs" ||
			gce.ResourcePath(h.HealthCheck) != "projects/"+project+"/global/healthChecks/hc" || h.State == "" {
			t.Errorf("%v: health %+v", it.Endpoint, h)
		}
	}
}

// TestApplicationDefaultCredentials builds the adapter the production way (no HTTPClient, no
// WithoutAuth): ADC find the emulator's metadata server through GCE_METADATA_HOST and every
// call carries its token.
func TestApplicationDefaultCredentials(t *testing.T) {
	fcfg := fakegce.Config{Project: project, Region: region}
	srv, base := fakegce.NewTestServer(t, fcfg)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(base, "http://"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	c, err := gce.New(context.Background(), gce.Config{Project: project, Region: region, Endpoint: base})
	if err != nil {
		t.Fatalf("gce.New with ADC: %v", err)
	}
	if _, err := c.ListZones(testCtx(t)); err != nil {
		t.Fatalf("ListZones with ADC: %v", err)
	}
	var found bool
	for _, r := range srv.Requests() {
		if r.Method == "compute.zones.list" {
			found = true
			if r.Authorization != "Bearer fake-token" {
				t.Errorf("zones.list Authorization = %q, want the metadata token", r.Authorization)
			}
		}
	}
	if !found {
		t.Error("no zones.list request logged")
	}
}
