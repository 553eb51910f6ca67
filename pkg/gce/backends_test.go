package gce_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

const (
	mBSPatch       = "compute.backendServices.patch"
	mRegionBSPatch = "compute.regionBackendServices.patch"
)

// bsFixture creates NEGs neg-a (zone a) and neg-b (zone b) and a backend service (regional if
// region is set) holding neg-a with a hand-set configuration, through the raw client.
func bsFixture(t *testing.T, e *env, ctx context.Context, region, name, protocol string, backends ...*compute.Backend) {
	t.Helper()
	for zone, n := range map[string]string{zoneA: "neg-a", zoneB: "neg-b"} {
		if _, err := e.cloud.CreateNEG(ctx, zone, gce.NEGSpec{Name: n}); err != nil {
			t.Fatalf("CreateNEG: %v", err)
		}
	}
	bs := &compute.BackendService{Name: name, Protocol: protocol, LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: backends}
	var err error
	if region == "" {
		_, err = e.cloud.Service().BackendServices.Insert(project, bs).Context(ctx).Do()
	} else {
		_, err = e.cloud.Service().RegionBackendServices.Insert(project, region, bs).Context(ctx).Do()
	}
	if err != nil {
		t.Fatalf("insert backend service: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.cloud.GetBackendService(ctx, region, name); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("backend service never appeared: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// foreign is a backend configured by someone else: capacity 0 (which must survive the round
// trip although it is a zero value), a description and a per-instance limit the adapter does
// not model.
func foreign() *compute.Backend {
	return &compute.Backend{
		Group: gce.NEGURL(project, zoneA, "neg-a"), BalancingMode: "RATE", MaxRatePerEndpoint: 7,
		CapacityScaler: 0, Description: "hand-made", ForceSendFields: []string{"CapacityScaler"},
	}
}

func TestGetAndUpdateBackendService(t *testing.T) {
	for _, region := range []string{"", region} {
		t.Run("region="+region, func(t *testing.T) {
			e := newEnv(t, fakegce.Config{OperationLatency: 10 * time.Millisecond}, nil)
			ctx := testCtx(t)
			bsFixture(t, e, ctx, region, "bs", "HTTP", foreign())

			got, err := e.cloud.GetBackendService(ctx, region, "bs")
			if err != nil {
				t.Fatalf("GetBackendService: %v", err)
			}
			if got.Fingerprint == "" || got.Protocol != "HTTP" || got.Region != region || len(got.Backends) != 1 {
				t.Fatalf("unexpected backend service %+v", got)
			}
			if b := got.Backends[0]; b.CapacityScaler != 0 || b.MaxRatePerEndpoint != 7 || b.BalancingMode != "RATE" {
				t.Errorf("backend read as %+v", b)
			}

			got.Backends = append(got.Backends, gce.Backend{Group: gce.NEGURL(project, zoneB, "neg-b"),
				BalancingMode: "RATE", MaxRatePerEndpoint: 100, CapacityScaler: 1})
			if err := e.cloud.UpdateBackendService(ctx, region, got); err != nil {
				t.Fatalf("UpdateBackendService: %v", err)
			}
			after := rawBS(t, e, ctx, region, "bs")
			if after.Fingerprint == got.Fingerprint {
				t.Errorf("fingerprint did not change")
			}
			want := []*compute.Backend{
				{Group: gce.NEGURL(project, zoneA, "neg-a"), BalancingMode: "RATE", MaxRatePerEndpoint: 7, CapacityScaler: 0, Description: "hand-made"},
				{Group: gce.NEGURL(project, zoneB, "neg-b"), BalancingMode: "RATE", MaxRatePerEndpoint: 100, CapacityScaler: 1},
			}
			if d := cmp.Diff(want, after.Backends, cmpBackend); d != "" {
				t.Errorf("backends after update (-want +got):\n%s", d)
			}

			// The fingerprint read before the update is stale now.
			err = e.cloud.UpdateBackendService(ctx, region, got)
			if !gce.IsConflict(err) {
				t.Errorf("update with a stale fingerprint: %v (class %v), want Conflict", err, gce.Classify(err))
			}

			// An empty list clears the backends.
			cur, err := e.cloud.GetBackendService(ctx, region, "bs")
			if err != nil {
				t.Fatal(err)
			}
			cur.Backends = nil
			if err := e.cloud.UpdateBackendService(ctx, region, cur); err != nil {
				t.Fatalf("clearing backends: %v", err)
			}
			if b := rawBS(t, e, ctx, region, "bs").Backends; len(b) != 0 {
				t.Errorf("backends not cleared: %d left", len(b))
			}
			method := mBSPatch
			if region != "" {
				method = mRegionBSPatch
			}
			if n := len(e.requests(method)); n != 3 {
				t.Errorf("%d %s requests, want 3", n, method)
			}
		})
	}
}

func TestUpdateBackendServiceChangesMode(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	bsFixture(t, e, ctx, "", "tcp-bs", "TCP", &compute.Backend{
		Group: gce.NEGURL(project, zoneA, "neg-a"), BalancingMode: "RATE", MaxRatePerEndpoint: 5,
	})
	bs, err := e.cloud.GetBackendService(ctx, "", "tcp-bs")
	if err != nil {
		t.Fatal(err)
	}
	bs.Backends[0].BalancingMode, bs.Backends[0].MaxConnectionsPerEndpoint = "CONNECTION", 10
	if err := e.cloud.UpdateBackendService(ctx, "", bs); err != nil {
		t.Fatalf("switching to CONNECTION: %v", err)
	}
	b := rawBS(t, e, ctx, "", "tcp-bs").Backends[0]
	if b.BalancingMode != "CONNECTION" || b.MaxConnectionsPerEndpoint != 10 || b.MaxRatePerEndpoint != 0 {
		t.Errorf("backend after switch: %+v", b)
	}
}

func TestBackendServiceErrors(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	if _, err := e.cloud.GetBackendService(ctx, "", "missing"); !gce.IsNotFound(err) {
		t.Errorf("get missing: %v, want NotFound", err)
	}
	bsFixture(t, e, ctx, "", "bs", "HTTP")
	bs, err := e.cloud.GetBackendService(ctx, "", "bs")
	if err != nil {
		t.Fatal(err)
	}
	bs.Backends = []gce.Backend{{Group: gce.NEGURL(project, zoneA, "no-such-neg"), BalancingMode: "RATE", MaxRatePerEndpoint: 1, CapacityScaler: 1}}
	if err := e.cloud.UpdateBackendService(ctx, "", bs); !gce.IsNotFound(err) {
		t.Errorf("backend naming a missing NEG: %v, want NotFound", err)
	}
	bs.Backends = []gce.Backend{{Group: gce.NEGURL(project, zoneA, "neg-a"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 1, CapacityScaler: 1}}
	if err := e.cloud.UpdateBackendService(ctx, "", bs); !gce.IsInvalid(err) {
		t.Errorf("CONNECTION on HTTP: %v, want Invalid", err)
	}

	// A write landing while ours runs makes our operation fail CONDITION_NOT_MET: Conflict.
	e.srv.InjectFault(fakegce.Fault{Method: mBSPatch, Code: 412, Reason: "conditionNotMet", Count: 1})
	bs.Backends = nil
	if err := e.cloud.UpdateBackendService(ctx, "", bs); !gce.IsConflict(err) {
		t.Errorf("injected 412: %v, want Conflict", err)
	}
}

// rawBS reads a backend service with the plain client.
func rawBS(t *testing.T, e *env, ctx context.Context, region, name string) *compute.BackendService {
	t.Helper()
	var bs *compute.BackendService
	var err error
	if region == "" {
		bs, err = e.cloud.Service().BackendServices.Get(project, name).Context(ctx).Do()
	} else {
		bs, err = e.cloud.Service().RegionBackendServices.Get(project, region, name).Context(ctx).Do()
	}
	if err != nil {
		t.Fatalf("get backend service: %v", err)
	}
	return bs
}

// cmpBackend compares the fields of a backend that matter here.
var cmpBackend = cmp.Transformer("backend", func(b *compute.Backend) map[string]any {
	return map[string]any{"group": b.Group, "mode": b.BalancingMode, "rate": b.MaxRatePerEndpoint,
		"conn": b.MaxConnectionsPerEndpoint, "cap": b.CapacityScaler, "desc": b.Description}
})

func TestDryRunBackendServices(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	bsFixture(t, e, ctx, "", "bs", "HTTP", foreign())
	var observed []string
	d := gce.DryRunBackendServices(e.cloud, func(m string) { observed = append(observed, m) })

	bs, err := d.GetBackendService(ctx, "", "bs")
	if err != nil {
		t.Fatal(err)
	}
	real := bs.Fingerprint
	bs.Backends = append(bs.Backends, gce.Backend{Group: gce.NEGURL(project, zoneB, "neg-b"), BalancingMode: "RATE", MaxRatePerEndpoint: 1, CapacityScaler: 1})
	if err := d.UpdateBackendService(ctx, "", bs); err != nil {
		t.Fatalf("dry-run update: %v", err)
	}
	if n := len(e.requests(mBSPatch)); n != 0 {
		t.Errorf("%d patches sent in dry run", n)
	}
	if b := rawBS(t, e, ctx, "", "bs"); len(b.Backends) != 1 || b.Fingerprint != real {
		t.Errorf("backend service changed in dry run: %+v", b)
	}
	again, err := d.GetBackendService(ctx, "", "bs")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Backends) != 2 || again.Fingerprint != real {
		t.Errorf("pretended write not overlaid: %d backends", len(again.Backends))
	}
	stale := *again
	stale.Fingerprint = "stale"
	if err := d.UpdateBackendService(ctx, "", &stale); !gce.IsConflict(err) {
		t.Errorf("stale fingerprint in dry run: %v", err)
	}
	if len(observed) != 1 || observed[0] != mBSPatch {
		t.Errorf("observed %v", observed)
	}

	// A real change elsewhere drops the overlay.
	cur, _ := e.cloud.GetBackendService(ctx, "", "bs")
	cur.Backends = nil
	if err := e.cloud.UpdateBackendService(ctx, "", cur); err != nil {
		t.Fatal(err)
	}
	if after, _ := d.GetBackendService(ctx, "", "bs"); len(after.Backends) != 0 {
		t.Errorf("stale overlay kept: %d backends", len(after.Backends))
	}
}
