package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// guardEnv is a naming UID guard over a uidEnv whose ConfigMap holds uid, with the fence it
// closes wrapped around the real adapter, metrics and /readyz as RunWithClients wires them.
type guardEnv struct {
	*uidEnv
	guard *namingUIDGuard
	clock *clocktesting.FakeClock
	cloud gce.Cloud // the fenced adapter
	reg   *prometheus.Registry
	ready *readiness
}

func newGuardEnv(t *testing.T, uid string) *guardEnv {
	t.Helper()
	e := newUIDEnv(t, uidConfigMapWith(map[string]string{"uid": uid, "provider-uid": "x"}))
	if err := e.srv.AddInstance("us-central1-a", fakegce.InstanceSpec{Name: "vm-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	e.createNEGs(t, generated("a", uid, testClusterUID, "ns", "web", 80))
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.SetNamingUIDConflict(false)
	fence := gce.NewFence()
	ready := &readiness{}
	ready.setFence(fence.Err)
	ready.set(func() bool { return true }, nil)
	clk := clocktesting.NewFakeClock(time.Now())
	g := &namingUIDGuard{client: e.kube, uid: uid, fence: fence, metrics: m, clock: clk, period: namingUIDCheckPeriod}
	return &guardEnv{uidEnv: e, guard: g, clock: clk, cloud: fence.Cloud(e.cloud), reg: reg, ready: ready}
}

// readyz returns the status code and body of /readyz.
func (g *guardEnv) readyz(t *testing.T) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	addHealth(mux, g.ready)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// attach attaches one endpoint to the NEG through the fenced adapter.
func (g *guardEnv) attach(t *testing.T, ip string) error {
	t.Helper()
	name := generated("a", g.guard.uid, testClusterUID, "ns", "web", 80).name
	return g.cloud.AttachNetworkEndpoints(t.Context(), "us-central1-a", name, []neg.Endpoint{{Instance: "vm-1", IP: ip, Port: 8080}})
}

// TestNamingUIDGuardChanged: a changed uid in the ConfigMap, seen at the next period, stops
// every GCE mutation, fails /readyz with the reason and sets the conflict gauge; the guard
// stops and the ConfigMap is left as the operator wrote it.
func TestNamingUIDGuardChanged(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	g := newGuardEnv(t, "a1b2c3d4e5f60718")

	// Unchanged: checks pass, mutations work, ready.
	if g.guard.check(ctx) {
		t.Fatal("fenced with the ConfigMap unchanged")
	}
	if err := g.attach(t, "10.8.0.5"); err != nil {
		t.Fatalf("attach before the change: %v", err)
	}
	if code, body := g.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s before the change", code, body)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.guard.run(ctx)
	}()
	cm, _ := g.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "ingress-uid", metav1.GetOptions{})
	cm.Data["uid"] = "0000000011111111"
	if _, err := g.kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The guard stops by itself once it has fenced: step the fake clock until it has (steps
	// before its ticker exists are lost, hence the loop).
	deadline := time.Now().Add(10 * time.Second)
	for stopped := false; !stopped; {
		select {
		case <-done:
			stopped = true
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the guard never acted on the changed ConfigMap")
			}
			g.clock.Step(namingUIDCheckPeriod)
		}
	}

	err := g.attach(t, "10.8.0.6")
	if gce.Classify(err) != gce.Fenced || !strings.Contains(err.Error(), "0000000011111111") {
		t.Errorf("attach after the change: %v; want a Fenced error naming the new value", err)
	}
	var fe *gce.FencedError
	if !errors.As(err, &fe) {
		t.Errorf("attach error %T is not a *gce.FencedError", err)
	}
	if eps, _ := g.srv.NEGEndpoints("us-central1-a", generated("a", g.guard.uid, testClusterUID, "ns", "web", 80).name); len(eps) != 1 {
		t.Errorf("NEG endpoints %v, want only the one attached before the change", eps)
	}
	code, body := g.readyz(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kube-system/ingress-uid") ||
		!strings.Contains(body, "a1b2c3d4e5f60718") || !strings.Contains(body, "--cluster-uid") {
		t.Errorf("/readyz = %d %q; want 503 with the reason", code, body)
	}
	if v := gaugeValue(t, g.reg, "neg_controller_naming_uid_conflict"); v != 1 {
		t.Errorf("neg_controller_naming_uid_conflict = %v, want 1", v)
	}
	if stored, _ := g.storedUID(t); stored != "0000000011111111" {
		t.Errorf("ConfigMap holds %q; the guard must not overwrite a changed value", stored)
	}
	if !g.guard.check(ctx) {
		t.Error("check after fencing must report fenced")
	}
}

// TestNamingUIDGuardRestores: a deleted ConfigMap, or one that lost its uid key, is written
// back with the UID in use; nothing is fenced.
func TestNamingUIDGuardRestores(t *testing.T) {
	cases := map[string]func(t *testing.T, g *guardEnv){
		"deleted": func(t *testing.T, g *guardEnv) {
			if err := g.kube.CoreV1().ConfigMaps("kube-system").Delete(t.Context(), "ingress-uid", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		"uid key removed": func(t *testing.T, g *guardEnv) {
			cm, _ := g.kube.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "ingress-uid", metav1.GetOptions{})
			delete(cm.Data, "uid")
			if _, err := g.kube.CoreV1().ConfigMaps("kube-system").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, lose := range cases {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			g := newGuardEnv(t, "a1b2c3d4e5f60718")
			lose(t, g)
			if _, exists := g.storedUID(t); exists && name == "deleted" {
				t.Fatal("ConfigMap not deleted")
			}
			for i := 0; i < 2; i++ { // the second check finds it restored
				if g.guard.check(ctx) {
					t.Fatalf("check %d fenced", i)
				}
				if stored, _ := g.storedUID(t); stored != "a1b2c3d4e5f60718" {
					t.Fatalf("check %d: ConfigMap holds %q, want the UID in use", i, stored)
				}
			}
			if err := g.attach(t, "10.8.0.5"); err != nil {
				t.Errorf("attach after the restore: %v", err)
			}
			if code, body := g.readyz(t); code != http.StatusOK {
				t.Errorf("/readyz = %d %s", code, body)
			}
			if v := gaugeValue(t, g.reg, "neg_controller_naming_uid_conflict"); v != 0 {
				t.Errorf("neg_controller_naming_uid_conflict = %v, want 0", v)
			}
		})
	}
}

// TestRunWithClientsStopsOnUIDChange: the wiring. The controller syncs a Service; then the
// ConfigMap's uid is changed: within a check period /readyz fails with the reason, the gauge
// is 1, and the attach the next endpoint needs is refused (a Warning event says why).
func TestRunWithClientsStopsOnUIDChange(t *testing.T) {
	e := newUIDEnv(t, uidConfigMapWith(map[string]string{"uid": "0123456789abcdef"}))
	if err := e.srv.AddInstance("us-central1-a", fakegce.InstanceSpec{Name: "node-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	for _, obj := range webService("10.8.0.5") {
		if err := e.kube.Tracker().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GCE_METADATA_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	o := NewOptions()
	o.Project, o.Region, o.GCEEndpoint = "p", "us-central1", e.base
	o.GCEOperationPollInterval = 10 * time.Millisecond
	o.MetricsBindAddress, o.LeaderElection.Enabled = freeAddress(t), false
	o.Readiness.BindAddress = "0"
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunWithClients(ctx, o, Clients{Kube: e.kube, Events: e.kube}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("RunWithClients: %v", err)
		}
	}()
	name := naming.NewNamer("0123456789abcdef").NEGName("default", "web", 80)
	waitUntil(t, 30*time.Second, "NEG synced", func() bool {
		eps, _ := e.srv.NEGEndpoints("us-central1-a", name)
		return len(eps) == 1
	})

	cms := e.kube.CoreV1().ConfigMaps("kube-system")
	cm, _ := cms.Get(ctx, "ingress-uid", metav1.GetOptions{})
	cm.Data["uid"] = "fedcba9876543210"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + o.MetricsBindAddress
	waitUntil(t, 3*namingUIDCheckPeriod, "/readyz failing with the reason", func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "fedcba9876543210")
	})
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "\nneg_controller_naming_uid_conflict 1\n") {
		t.Error("/metrics lacks neg_controller_naming_uid_conflict 1")
	}

	// A second pod: its attach is refused.
	slice, _ := e.kube.DiscoveryV1().EndpointSlices("default").Get(ctx, "web-1", metav1.GetOptions{})
	slice.Endpoints = append(slice.Endpoints, webService("10.8.0.6")[2].(*discoveryv1.EndpointSlice).Endpoints...)
	if _, err := e.kube.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "a Warning event for the refused attach", func() bool {
		evs, _ := e.kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, ev := range evs.Items {
			if ev.Reason == "AttachFailed" && strings.Contains(ev.Message, "Compute Engine mutations are stopped") {
				return true
			}
		}
		return false
	})
	if eps, _ := e.srv.NEGEndpoints("us-central1-a", name); len(eps) != 1 {
		t.Errorf("NEG endpoints %v; the fenced attach reached GCE", eps)
	}
	if stored, _ := e.storedUID(t); stored != "fedcba9876543210" {
		t.Errorf("ConfigMap holds %q; the operator's value must be left alone", stored)
	}
}

// webService returns a node, Service default/web (NEG for port 80) and its EndpointSlice with
// one endpoint at ip on node-1.
func webService(ip string) []runtime.Object {
	return []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec:   corev1.NodeSpec{ProviderID: "gce://p/us-central1-a/node-1"},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web",
			Annotations: map[string]string{annotation.NEGKey: `{"exposed_ports":{"80":{}}}`}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, NodeName: ptr.To("node-1"),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-" + ip}}}},
	}
}

// freeAddress returns a loopback host:port that was free a moment ago.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
