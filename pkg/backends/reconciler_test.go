package backends

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// fakeCloud is an in-memory BackendServices whose updates can be refused with 412.
type fakeCloud struct {
	mu        sync.Mutex
	bs        map[string]*gce.BackendService
	conflicts int // the next n updates fail with 412
	gets      int
	updates   int
	version   int
}

func (f *fakeCloud) GetBackendService(_ context.Context, region, name string) (*gce.BackendService, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	b := f.bs[region+"/"+name]
	if b == nil {
		return nil, &googleapi.Error{Code: http.StatusNotFound, Errors: []googleapi.ErrorItem{{Reason: "notFound"}}}
	}
	cp := *b
	cp.Backends = append([]gce.Backend(nil), b.Backends...)
	return &cp, nil
}

func (f *fakeCloud) UpdateBackendService(_ context.Context, region string, bs *gce.BackendService) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	cur := f.bs[region+"/"+bs.Name]
	if f.conflicts > 0 || cur.Fingerprint != bs.Fingerprint {
		f.conflicts--
		f.version++ // someone else wrote
		cur.Fingerprint = "v" + string(rune('a'+f.version))
		return &googleapi.Error{Code: http.StatusPreconditionFailed, Errors: []googleapi.ErrorItem{{Reason: "conditionNotMet"}}}
	}
	f.version++
	cp := *bs
	cp.Fingerprint = "v" + string(rune('a'+f.version))
	f.bs[region+"/"+bs.Name] = &cp
	return nil
}

// drain empties the queue (a fresh one replaces it).
func drain(r *Reconciler) {
	r.queue.ShutDown()
	r.queue = r.newQueue()
}

type nopEvents struct{}

func (nopEvents) Warn(cache.ObjectName, *corev1.Service, string, string, string) {}
func (nopEvents) Clear(cache.ObjectName, string)                                 {}
func (nopEvents) Normal(*corev1.Service, string, string)                         {}

func newTestReconciler(t *testing.T, cloud *fakeCloud) (*Reconciler, context.Context) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	r, err := NewReconciler(Config{KubeClient: fake.NewClientset(), Cloud: cloud, Project: proj, Region: "r",
		Allow: MustAllowList("bs"), Events: nopEvents{}, ConflictRetries: 3, ConflictDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r, ctx
}

func webWant(autoneg string, zones ...string) Want {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1",
		Annotations: map[string]string{}}}
	if autoneg != "" {
		svc.Annotations[annotation.AutonegKey] = autoneg
	}
	w := Want{Key: cache.ObjectName{Namespace: "default", Name: "web"}, Service: svc, Target: svc,
		NEGs: map[int32]PortNEGs{80: {Name: "n", Zones: zones}}}
	for _, z := range zones {
		w.Owned = append(w.Owned, neg.Ref{Zone: z, Name: "n"})
	}
	return w
}

func TestReconcilerConflictsAreBounded(t *testing.T) {
	cloud := &fakeCloud{bs: map[string]*gce.BackendService{"/bs": {Name: "bs", Protocol: "HTTP", Fingerprint: "v0"}}, conflicts: 2}
	r, ctx := newTestReconciler(t, cloud)
	w := webWant(`{"backend_services":{"80":[{"name":"bs"}]}}`, "a", "b")
	r.Update(w)
	if got := r.sync(ctx, w.Key); got != retryNone {
		t.Fatalf("two conflicts within three attempts: retry %v", got)
	}
	if n := len(cloud.bs["/bs"].Backends); n != 2 || cloud.updates != 3 || cloud.gets != 3 {
		t.Errorf("backends %d, updates %d, gets %d; want 2, 3, 3", n, cloud.updates, cloud.gets)
	}
	if !r.Holds(w.Key, neg.Ref{Zone: "a", Name: "n"}) {
		t.Errorf("a wired NEG is not held")
	}

	// Steady state: Update with the same view enqueues nothing; a sync writes nothing.
	drain(r)
	r.Update(w)
	if r.queue.Len() != 0 {
		t.Errorf("an unchanged Service was enqueued")
	}
	cloud.updates = 0
	if got := r.sync(ctx, w.Key); got != retryNone || cloud.updates != 0 {
		t.Errorf("steady state: retry %v, %d updates", got, cloud.updates)
	}

	// More conflicts than attempts: the Service is retried with backoff, nothing is lost.
	cloud.conflicts = 10
	w2 := webWant(`{"backend_services":{"80":[{"name":"bs","max_rate_per_endpoint":7}]}}`, "a", "b")
	r.Update(w2)
	if got := r.sync(ctx, w.Key); got != retryBackoff {
		t.Errorf("endless conflicts: retry %v, want backoff", got)
	}
	if !r.Holds(w.Key, neg.Ref{Zone: "a", Name: "n"}) {
		t.Errorf("NEG not held while the backend service's content is unknown")
	}
	cloud.conflicts = 0
	if got := r.sync(ctx, w.Key); got != retryNone || cloud.bs["/bs"].Backends[0].MaxRatePerEndpoint != 7 {
		t.Errorf("after conflicts stop: retry %v, backends %+v", got, cloud.bs["/bs"].Backends)
	}

	// The annotation goes away: the backends are removed and the NEGs released.
	r.Update(webWant("", "a", "b"))
	if got := r.sync(ctx, w.Key); got != retryNone || len(cloud.bs["/bs"].Backends) != 0 {
		t.Errorf("removal: retry %v, backends %+v", got, cloud.bs["/bs"].Backends)
	}
	if r.Holds(w.Key, neg.Ref{Zone: "a", Name: "n"}) {
		t.Errorf("NEG still held after removal")
	}
}

func TestReconcilerIgnoresOtherServices(t *testing.T) {
	cloud := &fakeCloud{bs: map[string]*gce.BackendService{}}
	r, _ := newTestReconciler(t, cloud)
	r.Update(webWant("", "a"))
	if r.queue.Len() != 0 || len(r.states) != 0 {
		t.Errorf("a Service without autoneg annotations was taken up")
	}
	// A status left by a previous run (or by gke-autoneg-controller) is a record to clean up:
	// its backend services are held until read.
	w := webWant("", "a")
	w.Service.Annotations[annotation.AutonegStatusKey] = `{"backend_services":{"80":{"bs":{"name":"bs"}}},"network_endpoint_groups":{"80":"n"},"zones":["a"]}`
	r.Update(w)
	if !r.Holds(w.Key, neg.Ref{Zone: "a", Name: "n"}) || r.queue.Len() != 1 {
		t.Errorf("status record not tracked")
	}
}
