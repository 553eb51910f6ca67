package gce_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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

func (r *recorder) waited() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waits
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
