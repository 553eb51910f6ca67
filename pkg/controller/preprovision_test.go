package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const zoneF = "us-central1-f"

// withPreprovisioning turns zone pre-provisioning on, the zones listed from the emulator.
func (e *testEnv) withPreprovisioning(cfg *Config) {
	cfg.Preprovisioning = PreprovisionConfig{Enabled: true, Region: region, RegionZones: e.newCloud().RegionZones}
}

// tweaks applies several configuration tweaks in order.
func tweaks(fs ...func(*Config)) func(*Config) {
	return func(cfg *Config) {
		for _, f := range fs {
			f(cfg)
		}
	}
}

// checkMarked returns nil when the NEG exists and carries PreprovisionedAnnotation exactly when
// marked.
func (e *testEnv) checkMarked(zone, name string, marked bool) error {
	n, err := e.newCloud().GetNEG(e.ctx, zone, name)
	if err != nil {
		return err
	}
	if got := preprovisioned(*n); got != marked {
		return fmt.Errorf("NEG %s/%s: pre-provisioned mark %v, want %v (annotations %v)", zone, name, got, marked, n.Annotations)
	}
	return nil
}

// checkStatusZones returns nil when the neg-status of default/svc lists exactly zones.
func (e *testEnv) checkStatusZones(svc string, zones ...string) error {
	st, ok := e.status("default", svc)
	if !ok || !slices.Equal(st.Zones, zones) {
		return fmt.Errorf("neg-status %+v (present %v), want zones %v", st, ok, zones)
	}
	return nil
}

// setNodeReady flips the Ready condition of a test node.
func (e *testEnv) setNodeReady(name string, ready bool) {
	e.t.Helper()
	n, err := e.kube.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	n = n.DeepCopy()
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if ready {
		n.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	if _, err := e.kube.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func TestZonePlan(t *testing.T) {
	regionZones := []string{zoneA, zoneB, zoneC}
	neg80 := func(zones string) string { return `{"exposed_ports":{"80":{}}` + zones + `}` }
	tests := []struct {
		name        string
		enabled     bool
		regionZones []string // nil: not listed yet
		ann         string
		hybrid      bool
		want        zonePlan // problem compared by substring
	}{
		{name: "off, no field", ann: neg80(""), want: zonePlan{final: true}},
		{name: "off, field ignored", ann: neg80(`,"zones":["*"]`),
			want: zonePlan{final: true, problem: "pre-provisioning is off in this controller (--enable-neg-preprovisioning=false)"}},
		{name: "on, no field", enabled: true, regionZones: regionZones, ann: neg80(""), want: zonePlan{final: true}},
		{name: "on, empty field", enabled: true, regionZones: regionZones, ann: neg80(`,"zones":[]`), want: zonePlan{final: true}},
		{name: "on, every zone", enabled: true, regionZones: regionZones, ann: neg80(`,"zones":["*"]`),
			want: zonePlan{zones: regionZones, final: true}},
		{name: "on, listed", enabled: true, regionZones: regionZones, ann: neg80(`,"zones":["us-central1-c","us-central1-a"]`),
			want: zonePlan{zones: []string{zoneA, zoneC}, final: true}},
		{name: "on, not in the region", enabled: true, regionZones: regionZones, ann: neg80(`,"zones":["us-central1-a","incorrect_value"]`),
			want: zonePlan{problem: `Ignore zone pre-provisioning annotation because of incorrect value: zone "incorrect_value" is not in the cluster's region zones: [us-central1-a us-central1-b us-central1-c]`}},
		{name: "on, wildcard mixed", enabled: true, regionZones: regionZones, ann: neg80(`,"zones":["*","us-central1-a"]`),
			want: zonePlan{problem: `"*" (every zone of the region) cannot be combined with zone names`}},
		{name: "on, zones unknown: pending", enabled: true, ann: neg80(`,"zones":["*"]`), want: zonePlan{}},
		{name: "on, hybrid annotation named", enabled: true, regionZones: regionZones, hybrid: true,
			ann:  neg80(`,"zones":["us-east1-b"]`),
			want: zonePlan{problem: `ignored until it is fixed`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Controller{cfg: Config{Preprovisioning: PreprovisionConfig{Enabled: tc.enabled, Region: region}}}
			if tc.regionZones != nil {
				c.regionZones.set(tc.regionZones)
			}
			svc := service("default", "web", tc.ann, 80)
			src := annotation.Source{ConfigKey: annotation.NEGKey, StatusKey: annotation.NEGStatusKey}
			if tc.hybrid {
				svc = hybridService("web", tc.ann, 80)
				src = hybridStatus
			}
			got := c.zonePlan(svc, src)
			if tc.want.problem == "" && got.problem != "" || !strings.Contains(got.problem, tc.want.problem) {
				t.Errorf("problem %q, want one containing %q", got.problem, tc.want.problem)
			}
			if tc.hybrid && !strings.Contains(got.problem, annotation.HybridNEGKey) {
				t.Errorf("problem %q does not name %s", got.problem, annotation.HybridNEGKey)
			}
			got.problem, tc.want.problem = "", ""
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(zonePlan{})); d != "" {
				t.Errorf("zonePlan (-want +got):\n%s", d)
			}
		})
	}
}

// TestPreprovisionEveryZone: "*" gives (empty) NEGs in every zone of the region besides the
// node zone, marked as pre-provisioned, listed in neg-status and in the
// ServiceNetworkEndpointGroup (ACTIVE); the node zone's NEG holds the pods and is not marked.
func TestPreprovisionEveryZone(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{Zones: []string{zoneA, zoneB, zoneC, zoneF}})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["*"]}`, 80))
	pods := e.pods(4, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	f := newSvcNEGFake(true, true)
	e.start(tweaks(e.withPreprovisioning, f.tweak), 0)
	name := negName("web", 80)
	e.eventually("NEGs in every zone", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB, zoneC, zoneF) })
	e.eventually("neg-status lists every zone", func() error { return e.checkStatusZones("web", zoneA, zoneB, zoneC, zoneF) })
	e.eventually("svcneg lists every zone", func() error { return e.checkSvcNEG(f, 80, zoneA, zoneB, zoneC, zoneF) })
	for _, z := range []string{zoneA, zoneB, zoneC, zoneF} {
		if err := e.checkMarked(z, name, z != zoneA); err != nil {
			t.Error(err)
		}
	}
	if evs := e.events("default", "web", ReasonIgnoreZonePreprovisioning); len(evs) > 0 {
		t.Errorf("unexpected %s events: %v", ReasonIgnoreZonePreprovisioning, evs)
	}
}

// TestPreprovisionZoneDropped: a zone dropped from the field loses its pre-provisioned NEG; a
// NEG created for nodes is kept (emptied) when its zone loses them, as before.
func TestPreprovisionZoneDropped(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-b"]}`, 80))
	e.start(e.withPreprovisioning, 0)
	name := negName("web", 80)
	e.eventually("NEGs in A and B", func() error {
		return errors.Join(e.checkMarked(zoneA, name, false), e.checkMarked(zoneB, name, true), e.checkStatusZones("web", zoneA, zoneB))
	})

	// Zone C gets a node (its NEG is the node's, unmarked), then loses it.
	e.addNode("node-c1", zoneC)
	e.eventually("NEG in C", func() error { return e.checkMarked(zoneC, name, false) })
	e.setNodeReady("node-c1", false)
	e.settle()

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("B's NEG deleted", func() error { return e.checkNoNEG(zoneB, name) })
	e.eventually("neg-status without B", func() error { return e.checkStatusZones("web", zoneA, zoneC) })
	e.settle()
	if err := errors.Join(e.checkNEG(zoneA, name, nil), e.checkNEG(zoneC, name, nil)); err != nil {
		t.Errorf("a node zone's NEG was touched: %v", err)
	}
	if n := e.srv.Counts()[mDelete]; n != 1 {
		t.Errorf("%d deletes, want 1 (B's)", n)
	}
}

// TestPreprovisionNodeInZoneKeepsNEG: a pre-provisioned NEG whose zone is dropped from the field
// is kept while any node (even one that is not Ready) is in its zone, and goes with the last.
func TestPreprovisionNodeInZoneKeepsNEG(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.setNodeReady("node-b1", false)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-b"]}`, 80))
	c := e.start(e.withPreprovisioning, 0)
	name := negName("web", 80)
	e.eventually("B's NEG pre-provisioned", func() error {
		return errors.Join(e.checkMarked(zoneB, name, true), e.checkStatusZones("web", zoneA, zoneB))
	})
	e.settle() // neg-status final: setAnnotation must not write an older value back

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.settle()
	if err := e.checkNEG(zoneB, name, nil); err != nil {
		t.Fatalf("NEG of a zone with a node deleted: %v", err)
	}
	// The garbage collection agrees (it decides without a sync).
	svc := e.getService("default", "web")
	src := annotation.Source{ConfigKey: annotation.NEGKey, StatusKey: annotation.NEGStatusKey}
	ref := neg.Ref{Zone: zoneB, Name: name}
	entry := c.index.Get(ref)
	if entry == nil {
		t.Fatal("NEG not indexed")
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	if c.retiredOutsideSync(svc, src, ref, *entry, nodes) {
		t.Errorf("GC would retire the NEG of a zone with a node")
	}
	withoutB := slices.DeleteFunc(slices.Clone(nodes), func(n *corev1.Node) bool { return n.Name == "node-b1" })
	if !c.retiredOutsideSync(svc, src, ref, *entry, withoutB) {
		t.Errorf("GC would keep the NEG of a zone without nodes")
	}

	if err := e.kube.CoreV1().Nodes().Delete(e.ctx, "node-b1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("B's NEG deleted with the last node", func() error { return e.checkNoNEG(zoneB, name) })
}

// TestPreprovisionInvalidZonesIgnored: one bad entry makes the whole field ignored with a
// Warning; the node zones' NEGs keep syncing and a NEG pre-provisioned earlier is kept.
func TestPreprovisionInvalidZonesIgnored(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-b"]}`, 80))
	e.createService(service("default", "mixed", `{"exposed_ports":{"80":{}},"zones":["*","us-central1-a"]}`, 80))
	e.start(e.withPreprovisioning, 0)
	name := negName("web", 80)
	e.eventually("B's NEG pre-provisioned", func() error {
		return errors.Join(e.checkMarked(zoneB, name, true), e.checkStatusZones("web", zoneA, zoneB))
	})
	e.settle() // neg-status final: setAnnotation must not write an older value back
	e.eventually("mixed: Warning", func() error {
		return e.checkEvent("default", "mixed", ReasonIgnoreZonePreprovisioning, `"*" (every zone of the region) cannot be combined`)
	})

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-b","us-east1-b"]}`)
	e.eventually("web: Warning", func() error {
		return e.checkEvent("default", "web", ReasonIgnoreZonePreprovisioning,
			`Ignore zone pre-provisioning annotation because of incorrect value: zone "us-east1-b" is not in the cluster's region zones: [us-central1-a us-central1-b us-central1-c]`)
	})
	pods := e.pods(3, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.eventually("A's NEG follows the pods", func() error { return e.checkService("web", 80, name, pods, zoneA) })
	e.settle()
	if err := e.checkNEG(zoneB, name, nil); err != nil {
		t.Errorf("NEG pre-provisioned earlier not kept: %v", err)
	}
	mixed := negName("mixed", 80)
	if err := errors.Join(e.checkNEG(zoneA, mixed, nil), e.checkNoNEG(zoneB, mixed), e.checkNoNEG(zoneC, mixed),
		e.checkStatusZones("mixed", zoneA)); err != nil {
		t.Errorf("mixed: %v", err)
	}
	if n := e.srv.Counts()[mDelete]; n != 0 {
		t.Errorf("%d deletes, want none", n)
	}
}

// TestPreprovisionOff: with pre-provisioning off a field is ignored with a Warning; turning it
// off after it was on deletes the NEGs it pre-provisioned (no node there), not the others.
func TestPreprovisionOff(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["*"]}`, 80))
	name := negName("web", 80)
	e.start(nil, 0)
	e.eventually("Warning", func() error {
		return e.checkEvent("default", "web", ReasonIgnoreZonePreprovisioning, "--enable-neg-preprovisioning=false")
	})
	e.settle()
	if err := errors.Join(e.checkNEG(zoneA, name, nil), e.checkNoNEG(zoneB, name), e.checkNoNEG(zoneC, name)); err != nil {
		t.Fatalf("pre-provisioned while off: %v", err)
	}
	e.stop()

	e.start(e.withPreprovisioning, 0)
	e.eventually("every zone", func() error { return e.checkStatusZones("web", zoneA, zoneB, zoneC) })
	e.stop()

	e.start(nil, 0)
	e.eventually("pre-provisioned NEGs deleted", func() error {
		return errors.Join(e.checkNoNEG(zoneB, name), e.checkNoNEG(zoneC, name), e.checkStatusZones("web", zoneA))
	})
	if err := e.checkNEG(zoneA, name, nil); err != nil {
		t.Errorf("node zone's NEG: %v", err)
	}
}

// TestPreprovisionInUseKept: a pre-provisioned NEG a backend service uses is kept when its zone
// is dropped (NEGInUse), and deleted once the backend service lets go.
func TestPreprovisionInUseKept(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-b"]}`, 80))
	e.start(e.withPreprovisioning, 0)
	name := negName("web", 80)
	e.eventually("B's NEG pre-provisioned", func() error {
		return errors.Join(e.checkMarked(zoneB, name, true), e.checkStatusZones("web", zoneA, zoneB))
	})
	e.settle() // neg-status final: setAnnotation must not write an older value back
	e.createBS("", "web-be", "HTTP", &compute.Backend{Group: gce.NEGURL(project, zoneB, name), BalancingMode: "RATE", MaxRatePerEndpoint: 1})

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("NEGInUse", func() error {
		return e.checkEvent("default", "web", ReasonNEGInUse, fmt.Sprintf("NEG %q in zone %q", name, zoneB))
	})
	e.waitQuietWithin(50 * time.Millisecond)
	if err := e.checkNEG(zoneB, name, nil); err != nil {
		t.Fatalf("NEG in use deleted: %v", err)
	}
	if _, err := e.newCloud().Service().BackendServices.Delete(project, "web-be").Context(e.ctx).Do(); err != nil {
		t.Fatalf("delete backend service: %v", err)
	}
	e.eventually("NEG deleted after release", func() error { return e.checkNoNEG(zoneB, name) })
}

// TestPreprovisionZonesListedLate: while the region's zones cannot be listed the field is
// pending (no Warning, no NEG outside the node zones); once they are, its NEGs appear.
func TestPreprovisionZonesListedLate(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-c"]}`, 80))
	var listable atomic.Bool
	e.start(func(cfg *Config) {
		e.withPreprovisioning(cfg)
		list := cfg.Preprovisioning.RegionZones
		cfg.Preprovisioning.RegionZones = func(ctx context.Context) ([]string, error) {
			if !listable.Load() {
				return nil, errors.New("zones.list refused")
			}
			return list(ctx)
		}
	}, 0)
	name := negName("web", 80)
	e.eventually("node zone's NEG", func() error { return e.checkNEG(zoneA, name, nil) })
	e.settle()
	if err := e.checkNoNEG(zoneC, name); err != nil {
		t.Fatal(err)
	}
	if evs := e.events("default", "web", ReasonIgnoreZonePreprovisioning); len(evs) > 0 {
		t.Errorf("Warning while pending: %v", evs)
	}
	listable.Store(true)
	e.eventually("C's NEG once the zones are listed", func() error {
		return errors.Join(e.checkMarked(zoneC, name, true), e.checkStatusZones("web", zoneA, zoneC))
	})
}

// TestPreprovisionHybrid: for hybrid NEGs the field names GCE zones of the region (not node
// labels): a NON_GCP_PRIVATE_IP_PORT NEG is pre-provisioned there besides the mapped zones, and
// goes when the zone is dropped.
func TestPreprovisionHybrid(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("ip-1", awsZoneA, zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-a"]}`, 80))
	pods := e.pods(2, "ip-1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(tweaks(withHybrid(HybridConfig{NonGCPMode: true, Zones: hybridMapping()}), e.withPreprovisioning), 0)
	name := negName("web", 80)
	e.eventually("hybrid NEGs in A (pre-provisioned) and B", func() error {
		return errors.Join(e.checkHybridNEG(zoneA, name, nil), e.checkHybridNEG(zoneB, name, e.hybridEndpointsOf(pods, 80)[zoneB]),
			e.checkMarked(zoneA, name, true), e.checkMarked(zoneB, name, false), e.checkStatusZones("web", zoneA, zoneB))
	})
	e.settle()
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("A's NEG deleted", func() error { return e.checkNoNEG(zoneA, name) })
	if err := e.checkHybridNEG(zoneB, name, e.hybridEndpointsOf(pods, 80)[zoneB]); err != nil {
		t.Errorf("mapped zone's NEG: %v", err)
	}
}
