package readiness

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

// boundWeb binds NEG "bound-neg" in zones a and b to Service web port 80.
func boundWeb(namespace string) []BoundNEG {
	if namespace != "default" {
		return nil
	}
	return []BoundNEG{{Service: "web", Port: 80, Zone: "us-central1-a", Name: "bound-neg"},
		{Service: "web", Port: 80, Zone: "us-central1-b", Name: "bound-neg"}}
}

// TestBoundTargets: a bound NEG gates the pods its Service selects; the pod's target is the NEG
// of its node's zone.
func TestBoundTargets(t *testing.T) {
	svc := testService(false)
	pod := testPod()
	if got := gatingServices([]*corev1.Service{svc}, pod, nil); len(got) != 0 {
		t.Errorf("without bound NEGs the Service gates the pod: %v", got)
	}
	if got := gatingServices([]*corev1.Service{svc}, pod, boundWeb("default")); len(got) != 1 {
		t.Errorf("gating Services = %v, want web", got)
	}
	negs, targets := boundTargets([]*corev1.Service{svc}, boundWeb("default"), pod, testNode(), nil, nil)
	var got []string
	for _, tg := range targets {
		got = append(got, tg.ref.Zone+"/"+tg.ref.Name+"/"+tg.endpoint.String())
	}
	if strings.Join(negs, ",") != "bound-neg" || strings.Join(got, ",") != "us-central1-a/bound-neg/node-1/10.64.1.5:8080" {
		t.Errorf("negs %v, targets %v", negs, got)
	}
	// Annotation-driven and bound NEGs together.
	negs, targets = podTargets([]*corev1.Service{testService(true)}, pod, testNode(), Placement{})
	negs, targets = boundTargets([]*corev1.Service{svc}, boundWeb("default"), pod, testNode(), negs, targets)
	if strings.Join(negs, ",") != "bound-neg,k8s1-neg-web" || len(targets) != 2 {
		t.Errorf("negs %v, %d targets", negs, len(targets))
	}
}

// TestReflectorBoundNEG: a pod of a Service with a bound NEG (no NEG annotation) waits for its
// endpoint in the bound NEG to be healthy, like a pod of an annotation-driven NEG.
func TestReflectorBoundNEG(t *testing.T) {
	kube := fake.NewClientset(testService(false), testPod(), testNode())
	h := &harness{t: t, kube: kube, cloud: &fakeHealth{eps: map[negRef][]gce.EndpointHealth{}, calls: map[negRef]int{}},
		clock: clocktesting.NewFakeClock(t0.Add(time.Second))}
	factory := informers.NewSharedInformerFactory(kube, 0)
	h.reg = prometheus.NewRegistry()
	r, err := New(Config{KubeClient: kube, Informers: factory, Cloud: h.cloud, WithoutHealthCheck: WithoutHealthCheckWait,
		Clock: h.clock, Bound: boundWeb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })

	c := h.waitReason(ReasonNotReady, 0)
	if !strings.Contains(c.Message, "[bound-neg]") {
		t.Errorf("waiting condition = %+v", c)
	}
	h.cloud.set(negRef{Zone: "us-central1-a", Name: "bound-neg"},
		gce.EndpointHealth{Endpoint: podEP, Healths: []gce.Health{{BackendService: bsURL, State: "HEALTHY"}}})
	r.ServiceChanged("default", "web") // what the binding controller calls when bound NEGs change
	if c := h.waitReason(ReasonReady, time.Second); c.Status != corev1.ConditionTrue {
		t.Errorf("ready condition = %+v", c)
	}
}

// TestWebhookBoundNEG: the webhook gates the pods of a Service with bound NEGs.
func TestWebhookBoundNEG(t *testing.T) {
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = svcs.Add(testService(false))
	nss := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = nss.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: map[string]string{InjectionLabel: InjectionEnabled}}})
	pod, _ := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Labels: map[string]string{"app": "web"}}})
	body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Namespace: "default", Operation: admissionv1.Create,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: pod}}})
	for _, tc := range []struct {
		bound     Binder
		wantPatch bool
	}{{nil, false}, {boundWeb, true}} {
		wh := NewWebhook(WebhookConfig{Services: corelisters.NewServiceLister(svcs), Namespaces: corelisters.NewNamespaceLister(nss),
			OwnNamespace: "neg-controller", Bound: tc.bound}, klog.Background())
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body)))
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("response %s: %v", rec.Body, err)
		}
		if got := len(out.Response.Patch) > 0; got != tc.wantPatch {
			t.Errorf("bound %v: patched %v (%s), want %v", tc.bound != nil, got, out.Response.Patch, tc.wantPatch)
		}
	}
}
