package gce_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const (
	project = "test-project"
	region  = "us-central1"
	zoneA   = "us-central1-a"
	zoneB   = "us-central1-b"

	mInsert = "compute.networkEndpointGroups.insert"
	mDelete = "compute.networkEndpointGroups.delete"
	mGet    = "compute.networkEndpointGroups.get"
	mAttach = "compute.networkEndpointGroups.attachNetworkEndpoints"
	mDetach = "compute.networkEndpointGroups.detachNetworkEndpoints"
	mList   = "compute.networkEndpointGroups.listNetworkEndpoints"
	mWait   = "compute.zoneOperations.wait"
)

// env is one emulator and one adapter talking to it over HTTP.
type env struct {
	srv   *fakegce.Server
	cloud *gce.Compute
	obs   *recorder
}

// newEnv starts the emulator with fcfg (project/region/zones filled in) and builds the adapter
// with fast retries and polls; tweak adjusts the adapter's Config.
func newEnv(t *testing.T, fcfg fakegce.Config, tweak func(*gce.Config)) *env {
	t.Helper()
	fcfg.Project, fcfg.Region = project, region
	if len(fcfg.Zones) == 0 {
		fcfg.Zones = []string{zoneA, zoneB, "us-central1-c"}
	}
	srv, base := fakegce.NewTestServer(t, fcfg)
	obs := &recorder{}
	cfg := gce.Config{
		Project:               project,
		Region:                region,
		Endpoint:              base,
		WithoutAuth:           true,
		OperationPollInterval: 5 * time.Millisecond,
		RetryBaseDelay:        5 * time.Millisecond,
		Observer:              obs,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := gce.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("gce.New: %v", err)
	}
	return &env{srv: srv, cloud: c, obs: obs}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requests returns the emulator's log entries for one method, oldest first.
func (e *env) requests(method string) []fakegce.RequestRecord {
	var out []fakegce.RequestRecord
	for _, r := range e.srv.Requests() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// recorder is an Observer that keeps everything it is told.
type recorder struct {
	mu         sync.Mutex
	requests   map[string]int // method/result
	operations map[string]int // method/result
	waits      int
}

func (r *recorder) ObserveRequest(method, result string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests == nil {
		r.requests = map[string]int{}
	}
	r.requests[method+"/"+result]++
}

func (r *recorder) ObserveOperation(method, result string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.operations == nil {
		r.operations = map[string]int{}
	}
	r.operations[method+"/"+result]++
}

func (r *recorder) ObserveRateLimitWait(string, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits++
}

func (r *recorder) op(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.operations[key]
}

func (r *recorder) req(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[key]
}

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

// Observer method names are the API method ids without the "compute." prefix.
const (
	mInsertOp = "networkEndpointGroups.insert"
	mAttachOp = "networkEndpointGroups.attachNetworkEndpoints"
)

// podEndpoints returns n endpoints spread over instances node-0.. (1000 per instance, alias
// range 10.<i+10>.0.0/22), port 8080.
func podEndpoints(n int) []neg.Endpoint {
	var out []neg.Endpoint
	for i := 0; i < n; i++ {
		node, k := i/1000, i%1000
		out = append(out, neg.Endpoint{
			Instance: fmt.Sprintf("node-%d", node),
			IP:       fmt.Sprintf("10.%d.%d.%d", node+10, k/250, k%250+1),
			Port:     8080,
		})
	}
	return out
}

func addNodes(t *testing.T, srv *fakegce.Server, zone string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		spec := fakegce.InstanceSpec{Name: fmt.Sprintf("node-%d", i), AliasCIDRs: []string{fmt.Sprintf("10.%d.0.0/22", i+10)}}
		if err := srv.AddInstance(zone, spec); err != nil {
			t.Fatalf("AddInstance: %v", err)
		}
	}
}

func batches(eps []neg.Endpoint, size int) [][]neg.Endpoint {
	var out [][]neg.Endpoint
	for len(eps) > size {
		out = append(out, eps[:size])
		eps = eps[size:]
	}
	return append(out, eps)
}

func listed(t *testing.T, ctx context.Context, c gce.Cloud, zone, name string) []neg.Endpoint {
	t.Helper()
	items, err := c.ListNetworkEndpoints(ctx, zone, name, false)
	if err != nil {
		t.Fatalf("ListNetworkEndpoints: %v", err)
	}
	out := make([]neg.Endpoint, 0, len(items))
	for _, it := range items {
		if len(it.Healths) != 0 {
			t.Errorf("healths listed without asking: %+v", it)
		}
		out = append(out, it.Endpoint)
	}
	neg.SortEndpoints(out)
	return out
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

func TestFailedOperation(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 10 * time.Millisecond}, nil)
	ctx := testCtx(t)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, FailOperation: true, OperationErrorCode: "QUOTA_EXCEEDED", Count: 1})

	_, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"})
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("CreateNEG with a failing operation = %v (%T), want a wrapped *googleapi.Error", err, err)
	}
	if gerr.Code != http.StatusForbidden || len(gerr.Errors) == 0 || gerr.Errors[0].Reason != "QUOTA_EXCEEDED" {
		t.Errorf("operation error = %+v, want 403 QUOTA_EXCEEDED", gerr)
	}
	if c := gce.Classify(err); c != gce.QuotaExceeded || gce.Retry(c) != gce.RetryLater {
		t.Errorf("class = %v, want QuotaExceeded/RetryLater", c)
	}
	if n := len(e.requests(mInsert)); n != 1 {
		t.Errorf("a failed operation was retried: %d inserts", n)
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); !gce.IsNotFound(err) {
		t.Errorf("failed insert left a NEG: %v", err)
	}
	if got := e.obs.op(mInsertOp + "/QuotaExceeded"); got != 1 {
		t.Errorf("observed %d QuotaExceeded insert operations, want 1", got)
	}

	// An internal operation failure is a retryable Server error.
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	addNodes(t, e.srv, zoneA, 1)
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, FailOperation: true, Count: 1})
	err = e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(3))
	if c := gce.Classify(err); c != gce.Server {
		t.Errorf("attach with an INTERNAL_ERROR operation = %v (class %v), want Server", err, c)
	}
}

func TestRateLimitedRetrySameRequestID(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	before := e.cloud.RateLimiterState()[gce.GroupAttach]
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, Code: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Count: 1})

	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(10)); err != nil {
		t.Fatalf("AttachNetworkEndpoints after one 429: %v", err)
	}
	recs := e.requests(mAttach)
	if len(recs) != 2 {
		t.Fatalf("attach sent %d times, want 2 (429, then success): %+v", len(recs), recs)
	}
	if recs[0].Status != http.StatusTooManyRequests || recs[1].Status != http.StatusOK {
		t.Errorf("statuses = %d, %d; want 429, 200", recs[0].Status, recs[1].Status)
	}
	if recs[0].RequestID == "" || recs[0].RequestID != recs[1].RequestID {
		t.Errorf("retry used requestId %q, first attempt %q; want the same", recs[1].RequestID, recs[0].RequestID)
	}
	after := e.cloud.RateLimiterState()[gce.GroupAttach]
	if !(after < before) {
		t.Errorf("attach rate %v after a 429, before %v: want slower", after, before)
	}
	if got := e.obs.req(mAttachOp + "/RateLimited"); got != 1 {
		t.Errorf("observed %d RateLimited attach requests, want 1", got)
	}
	if got, _ := e.srv.NEGEndpoints(zoneA, "web"); len(got) != 10 {
		t.Errorf("NEG holds %d endpoints, want 10", len(got))
	}
}

func TestServerErrorRetriesBounded(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) { c.MaxCallAttempts = 3 })
	ctx := testCtx(t)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, Code: http.StatusServiceUnavailable, Count: 5})
	_, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"})
	if c := gce.Classify(err); c != gce.Server {
		t.Fatalf("CreateNEG under 503s = %v (class %v), want Server", err, c)
	}
	recs := e.requests(mInsert)
	if len(recs) != 3 {
		t.Fatalf("insert sent %d times, want 3", len(recs))
	}
	for _, r := range recs[1:] {
		if r.RequestID != recs[0].RequestID {
			t.Errorf("requestIds differ across retries: %q vs %q", r.RequestID, recs[0].RequestID)
		}
	}
	// The next logical mutation gets a new requestId and succeeds (2 faults left, 3 attempts).
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatalf("second CreateNEG: %v", err)
	}
	recs = e.requests(mInsert)
	if len(recs) != 6 || recs[3].RequestID == recs[0].RequestID || recs[5].RequestID != recs[3].RequestID {
		t.Errorf("second mutation's requests: %+v", recs[3:])
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

func TestOperationNeverFinishes(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, NeverFinish: true, Count: 1})
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := e.cloud.AttachNetworkEndpoints(short, zoneA, "web", podEndpoints(1))
	if !errors.Is(err, context.DeadlineExceeded) || gce.Classify(err) != gce.Server {
		t.Errorf("attach with a stuck operation = %v (class %v), want a deadline (Server)", err, gce.Classify(err))
	}
	if e.cloud.InFlight() != 0 {
		t.Errorf("%d in-flight slots still taken", e.cloud.InFlight())
	}
}

// concurrencyTransport counts concurrent requests.
type concurrencyTransport struct {
	cur, max atomic.Int64
}

func (c *concurrencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.cur.Add(1)
	defer c.cur.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestMaxInFlight(t *testing.T) {
	tr := &concurrencyTransport{}
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) {
		c.MaxInFlight = 3
		c.HTTPClient = &http.Client{Transport: tr}
		c.RateLimits = map[string]gce.RateLimit{gce.GroupGetNEG: {QPS: 1000, Burst: 1000}}
	})
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(fakegce.Fault{Method: mGet, Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
				t.Errorf("GetNEG: %v", err)
			}
		})
	}
	wg.Wait()
	if m := tr.max.Load(); m > 3 || m < 2 {
		t.Errorf("max concurrent requests = %d, want 2..3 (MaxInFlight 3)", m)
	}
}

func TestRateLimitWaitObserved(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) {
		c.RateLimits = map[string]gce.RateLimit{gce.GroupGetNEG: {QPS: 50, Burst: 1}}
	})
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 {
		if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
			t.Fatal(err)
		}
	}
	e.obs.mu.Lock()
	waits := e.obs.waits
	e.obs.mu.Unlock()
	if waits == 0 {
		t.Errorf("no rate-limit wait observed for 5 gets at 50 qps burst 1 (took %v)", time.Since(start))
	}
}
