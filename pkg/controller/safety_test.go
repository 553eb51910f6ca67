package controller

import (
	"fmt"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/negstatus"
)

// The safety rules of issue 12: the controller never empties, freezes or deletes a NEG it does
// not own. Each test here failed on the code before the rule was enforced.

// olderService returns svc created an hour before now, so that it would win an oldest-claimant
// contest.
func olderService(svc *corev1.Service) *corev1.Service {
	svc.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	return svc
}

// TestCustomNameClaimCannotFreezeOwner: an older Service in another namespace claiming the
// custom name of prod/web's existing NEG is refused (NEGNameConflict on the claimant), and
// prod/web keeps syncing its NEG (the pods roll, the NEG follows).
func TestCustomNameClaimCannotFreezeOwner(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("prod", "web", `{"exposed_ports":{"80":{"name":"prod-web"}}}`, 80))
	pods := e.pods(4, "node-a1")
	e.setEndpoints("prod", "web", []int32{80}, pods)
	e.start(nil, 0)
	e.eventually("prod synced", func() error { return e.checkNEG(zoneA, "prod-web", e.endpointsOf(pods, 80)[zoneA]) })

	e.createService(olderService(service("evil", "squat", `{"exposed_ports":{"80":{"name":"prod-web"}}}`, 80)))
	e.eventually("claimant refused", func() error {
		return e.checkEvent("evil", "squat", ReasonNEGNameConflict, `"prod-web"`)
	})
	rolled := make([]testPod, len(pods))
	for i := range pods {
		rolled[i] = testPod{name: fmt.Sprintf("rolled-%d", i), node: "node-a1", ip: e.podIP("node-a1", 100+i)}
	}
	e.setEndpoints("prod", "web", []int32{80}, rolled)
	e.eventually("owner keeps syncing", func() error { return e.checkNEG(zoneA, "prod-web", e.endpointsOf(rolled, 80)[zoneA]) })
	if evs := e.events("prod", "web", ReasonNEGNameConflict); len(evs) > 0 {
		t.Errorf("owner got a name conflict warning: %s", evs[0].Message)
	}
	desc, _ := naming.ParseDescription(e.negDescription(zoneA, "prod-web"))
	if desc.Namespace != "prod" || desc.ServiceName != "web" {
		t.Errorf("NEG description now %+v, want prod/web", desc)
	}
}

// TestCustomNameLikeGeneratedRefused: custom names shaped like generated names are refused, so
// no Service can squat another Service's generated name.
func TestCustomNameLikeGeneratedRefused(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	victim := namer.NEGName("prod", "web", 80)
	e.createService(service("evil", "squat", fmt.Sprintf(`{"exposed_ports":{"80":{"name":%q}}}`, victim), 80))
	e.createService(service("default", "k8s2", `{"exposed_ports":{"80":{"name":"k8s2-abc"}}}`, 80))
	e.createService(service("default", "ok", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(nil, 0)
	e.eventually("k8s1 refused", func() error {
		return e.checkEvent("evil", "squat", annotation.ReasonInvalidCustomName, victim)
	})
	e.eventually("k8s2 refused", func() error {
		return e.checkEvent("default", "k8s2", annotation.ReasonInvalidCustomName, "k8s2-abc")
	})
	e.eventually("barrier: the valid Service synced", func() error { return e.checkNEG(zoneA, negName("ok", 80), nil) })
	e.waitQuiet()
	for _, n := range []string{victim, "k8s2-abc"} {
		if err := e.checkNoNEG(zoneA, n); err != nil {
			t.Error(err)
		}
	}
}

// TestCustomNameNamespacePrefix: with RequireNamespacePrefix, custom names must start with
// "<namespace>-".
func TestCustomNameNamespacePrefix(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("team", "web", `{"exposed_ports":{"80":{"name":"other-web"}}}`, 80))
	e.createService(service("team", "api", `{"exposed_ports":{"80":{"name":"team-api"}}}`, 80))
	e.start(func(c *Config) { c.RequireNamespacePrefix = true }, 0)
	e.eventually("prefix enforced", func() error {
		return e.checkEvent("team", "web", annotation.ReasonInvalidCustomName, `"team-"`)
	})
	e.eventually("prefixed name used", func() error { return e.checkNEG(zoneA, "team-api", nil) })
	e.waitQuiet()
	if err := e.checkNoNEG(zoneA, "other-web"); err != nil {
		t.Error(err)
	}
}

// TestNEGsNotOursAreNeverTouched: NEGs whose description names this cluster but that fail
// another ownership check — a GCE_VM_IP NEG (GKE L4), a generated name of another naming UID
// (a restored cluster), a NEG on another network, a custom name no Service claims — are never
// detached or deleted by garbage collection; a NEG that is ours is.
func TestNEGsNotOursAreNeverTouched(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	cloud := e.newCloud()
	if _, err := cloud.Service().Networks.Insert(project, &compute.Network{Name: "other", AutoCreateSubnetworks: true}).Context(e.ctx).Do(); err != nil {
		t.Fatalf("insert network: %v", err)
	}
	desc := func(svc string) string { return naming.NewDescription(clusterUID, "default", svc, 80).String() }
	otherNamer := naming.NewNamer("ffffeeee00001111")
	foreign := []gce.NEGSpec{
		{Name: "k8s2-" + namingUID[:8] + "-default-l4-abc", Type: "GCE_VM_IP", Description: desc("l4"), Network: "default"},
		{Name: otherNamer.NEGName("default", "restored", 80), Type: gce.TypeGCEVMIPPort, Description: desc("restored"), Network: "default"},
		{Name: negName("othernet", 80), Type: gce.TypeGCEVMIPPort, Description: desc("othernet"), Network: "other"},
		{Name: "unclaimed-custom", Type: gce.TypeGCEVMIPPort, Description: desc("unclaimed"), Network: "default"},
	}
	for _, spec := range foreign {
		if _, err := cloud.CreateNEG(e.ctx, zoneA, spec); err != nil {
			t.Fatalf("CreateNEG %s: %v", spec.Name, err)
		}
	}
	ours := negName("gone", 80)
	if _, err := cloud.CreateNEG(e.ctx, zoneA, gce.NEGSpec{Name: ours, Type: gce.TypeGCEVMIPPort, Description: desc("gone"), Network: "default"}); err != nil {
		t.Fatalf("CreateNEG: %v", err)
	}
	e.srv.ResetCounts()
	e.start(nil, 0)
	e.eventually("GC deleted our own orphan", func() error { return e.checkNoNEG(zoneA, ours) })
	e.waitQuiet()
	for _, spec := range foreign {
		if err := e.checkNEG(zoneA, spec.Name, nil); err != nil {
			t.Errorf("%s: %v", spec.Name, err)
		}
	}
	if c := e.srv.Counts(); c[mDelete] != 1 || c[mDetach] != 0 {
		t.Errorf("delete/detach calls = %d/%d, want 1/0 (only our orphan deleted)", c[mDelete], c[mDetach])
	}
}

// TestInUseNEGKeepsEndpoints: a NEG no longer wanted but used by a backend service keeps its
// endpoints, in step with the Service's EndpointSlices while the Service exists and as they are
// after it is gone; it is deleted once the backend service lets go.
func TestInUseNEGKeepsEndpoints(t *testing.T) {
	e, pods := syncedWeb(t)
	name := negName("web", 443)
	cloud := e.newCloud()
	e.createBS("", "web-be", "HTTP", &compute.Backend{
		Group: gce.NEGURL(project, zoneA, name), BalancingMode: "RATE", MaxRatePerEndpoint: 1,
	})
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("NEGInUse", func() error {
		return e.checkEvent("default", "web", ReasonNEGInUse, fmt.Sprintf("NEG %q in zone %q", name, zoneA))
	})
	e.eventually("the unused NEG is deleted", func() error { return e.checkNoNEG(zoneB, name) })
	if err := e.checkNEG(zoneA, name, e.endpointsOf(pods, 443)[zoneA]); err != nil {
		t.Fatalf("in-use NEG lost endpoints: %v", err)
	}

	// Pods roll: the in-use NEG follows the Service's slices.
	rolled := e.pods(6, "node-a1", "node-b1")
	for i := range rolled {
		rolled[i].ip = e.podIP(rolled[i].node, 50+i)
		rolled[i].name += "-rolled"
	}
	e.setEndpoints("default", "web", []int32{80, 443}, rolled)
	e.eventually("in-use NEG in step", func() error { return e.checkNEG(zoneA, name, e.endpointsOf(rolled, 443)[zoneA]) })

	// The Service goes: the endpoints stay as they are.
	e.deleteService("default", "web")
	e.eventually("port 80 NEGs deleted", func() error { return e.checkGone(negName("web", 80)) })
	// The in-use NEG's delete is retried for good (at most every backoff cap): wait for the
	// quiet moments between retries.
	e.waitQuietWithin(50 * time.Millisecond)
	if err := e.checkNEG(zoneA, name, e.endpointsOf(rolled, 443)[zoneA]); err != nil {
		t.Fatalf("in-use NEG changed after the Service was deleted: %v", err)
	}

	if _, err := cloud.Service().BackendServices.Delete(project, "web-be").Context(e.ctx).Do(); err != nil {
		t.Fatalf("delete backend service: %v", err)
	}
	e.eventually("NEG deleted after release", func() error { return e.checkNoNEG(zoneA, name) })
}

// TestExternalNameServiceGetsNoNEGs: the annotation on an ExternalName Service yields a
// Warning and no NEG.
func TestExternalNameServiceGetsNoNEGs(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	svc := service("default", "ext", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
	e.createService(svc)
	e.createService(service("default", "ok", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(nil, 0)
	e.eventually("warning", func() error { return e.checkEvent("default", "ext", ReasonExternalNameService, "ExternalName") })
	e.eventually("barrier", func() error { return e.checkNEG(zoneA, negName("ok", 80), nil) })
	e.waitQuiet()
	if err := e.checkNoNEG(zoneA, negName("ext", 80)); err != nil {
		t.Error(err)
	}
}

// TestIPv6OnlyServiceWarns: an IPv6-only Service gets a NoIPv4Endpoints Warning and no NEG;
// a Service whose slices are all FQDN gets the Warning too.
func TestIPv6OnlyServiceWarns(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	svc := service("default", "v6", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	e.createService(svc)
	e.createService(service("default", "fqdn", `{"exposed_ports":{"80":{}}}`, 80))
	e.setFQDNEndpoints("default", "fqdn", 80, "backend.example.com")
	e.start(nil, 0)
	e.eventually("v6 warning", func() error { return e.checkEvent("default", "v6", ReasonNoIPv4Endpoints, "IPv6") })
	e.eventually("fqdn warning", func() error { return e.checkEvent("default", "fqdn", ReasonNoIPv4Endpoints, "FQDN") })
	e.waitQuiet()
	if err := e.checkNoNEG(zoneA, negName("v6", 80)); err != nil {
		t.Error(err)
	}
}

// TestStuckInsertDoesNotBlockOtherServices: with one sync worker, a NEG insert whose operation
// never finishes does not keep another Service from getting its NEG.
func TestStuckInsertDoesNotBlockOtherServices(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, NeverFinish: true, Count: 1})
	e.createService(service("default", "stuck", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(func(c *Config) { c.ConcurrentSyncs = 1 }, 0)
	e.eventually("the stuck insert was sent", func() error {
		if n := e.srv.Counts()[mInsert]; n != 1 {
			return fmt.Errorf("%d inserts", n)
		}
		return nil
	})
	pods := e.pods(3, "node-a1")
	e.createService(service("default", "other", `{"exposed_ports":{"80":{}}}`, 80))
	e.setEndpoints("default", "other", []int32{80}, pods)
	e.eventually("the other Service synced", func() error {
		return e.checkNEG(zoneA, negName("other", 80), e.endpointsOf(pods, 80)[zoneA])
	})
}

// TestManyPortsShareInserts: a Service with many ports does not queue all its NEG inserts ahead
// of a Service that comes after it. With the mutation budget the bottleneck (10 calls/s here),
// the small Service's insert waits behind a few of the wide Service's, not behind all 40: at most
// maxCreatesPerService inserts of a Service are in flight, and the budget serves Services in
// turn.
func TestManyPortsShareInserts(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	var ports []int32
	exposed := ""
	for p := int32(1000); p < 1040; p++ {
		ports = append(ports, p)
		if exposed != "" {
			exposed += ","
		}
		exposed += fmt.Sprintf(`"%d":{}`, p)
	}
	e.createService(service("default", "wide", `{"exposed_ports":{`+exposed+`}}`, ports...))
	e.start(func(c *Config) {
		c.ConcurrentSyncs = 1
		c.Cloud = e.newCloudWith(func(g *gce.Config) { g.Budgets = map[string]int{gce.BudgetMutations: 600} })
	}, 0)
	e.eventually("the wide Service started inserting", func() error {
		if n := e.srv.Counts()[mInsert]; n == 0 {
			return fmt.Errorf("no insert yet")
		}
		return nil
	})
	e.createService(service("default", "small", `{"exposed_ports":{"80":{}}}`, 80))
	wideDone := 0
	e.eventually("the small Service's NEG exists", func() error {
		if err := e.checkNEG(zoneA, negName("small", 80), nil); err != nil {
			return err
		}
		for _, p := range ports {
			if _, ok := e.srv.NEGEndpoints(zoneA, negName("wide", p)); ok {
				wideDone++
			}
		}
		return nil
	})
	t.Logf("%d of the wide Service's NEGs existed when the small Service's one did", wideDone)
	if wideDone > len(ports)/2 {
		t.Errorf("%d of the wide Service's %d NEGs were created before the small Service's one, want at most %d",
			wideDone, len(ports), len(ports)/2)
	}
}

// TestOtherStatusWriterStopsMutations: when another field manager (GKE's NEG controller) writes
// a Service's neg-status, the controller leaves that Service's NEGs alone and says why.
func TestOtherStatusWriterStopsMutations(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	svc := service("default", "gke", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Annotations[annotation.NEGStatusKey] = `{"network_endpoint_groups":{"80":"x"},"zones":["us-central1-a"]}`
	// The API server (here the fake's field-managed tracker) records who wrote neg-status.
	if _, err := e.kube.CoreV1().Services("default").Create(e.ctx, svc, metav1.CreateOptions{FieldManager: "glbc"}); err != nil {
		t.Fatal(err)
	}
	ours := service("default", "ours", `{"exposed_ports":{"80":{}}}`, 80)
	ours.Annotations[annotation.NEGStatusKey] = `{}`
	if _, err := e.kube.CoreV1().Services("default").Create(e.ctx, ours, metav1.CreateOptions{FieldManager: negstatus.FieldManager}); err != nil {
		t.Fatal(err)
	}
	e.start(nil, 0)
	e.eventually("conflict reported", func() error {
		return e.checkEvent("default", "gke", ReasonNEGControllerConflict, "field manager glbc")
	})
	e.eventually("barrier: our own Service synced", func() error { return e.checkNEG(zoneA, negName("ours", 80), nil) })
	e.waitQuiet()
	if err := e.checkNoNEG(zoneA, negName("gke", 80)); err != nil {
		t.Error(err)
	}
	if got := e.getService("default", "gke").Annotations[annotation.NEGStatusKey]; got != svc.Annotations[annotation.NEGStatusKey] {
		t.Errorf("neg-status rewritten to %s", got)
	}
}
