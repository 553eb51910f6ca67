package readiness

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

func TestWebhook(t *testing.T) {
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	nss := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, ns := range []struct {
		name, label string
	}{{"default", InjectionEnabled}, {"plain", ""}, {"neg-controller", InjectionEnabled}} {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: map[string]string{}}}
		if ns.label != "" {
			n.Labels[InjectionLabel] = ns.label
		}
		_ = nss.Add(n)
	}
	for _, ns := range []string{"default", "plain", "neg-controller"} {
		s := testService(true)
		s.Namespace = ns
		_ = svcs.Add(s)
	}
	plainSvc := testService(false)
	plainSvc.Name, plainSvc.Spec.Selector = "other", map[string]string{"app": "other"}
	_ = svcs.Add(plainSvc)

	review := func(ns string, op admissionv1.Operation, pod *corev1.Pod) *admissionv1.AdmissionRequest {
		raw, _ := json.Marshal(pod)
		return &admissionv1.AdmissionRequest{UID: "uid-1", Namespace: ns, Operation: op,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: raw}}
	}
	fresh := func(labels map[string]string, gates ...corev1.PodReadinessGate) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Labels: labels},
			Spec: corev1.PodSpec{ReadinessGates: gates}}
	}
	web := map[string]string{"app": "web"}
	other := corev1.PodReadinessGate{ConditionType: "example.com/other"}
	cases := []struct {
		name        string
		clusterWide bool
		req         *admissionv1.AdmissionRequest
		wantPatch   string
	}{
		{"labelled namespace", false, review("default", admissionv1.Create, fresh(web)),
			`[{"op":"add","path":"/spec/readinessGates","value":[{"conditionType":"cloud.google.com/load-balancer-neg-ready"}]}]`},
		{"appends to existing gates", false, review("default", admissionv1.Create, fresh(web, other)),
			`[{"op":"add","path":"/spec/readinessGates/-","value":{"conditionType":"cloud.google.com/load-balancer-neg-ready"}}]`},
		{"already gated", false, review("default", admissionv1.Create, fresh(web, corev1.PodReadinessGate{ConditionType: GateType})), ""},
		{"no NEG Service selects it", false, review("default", admissionv1.Create, fresh(map[string]string{"app": "other"})), ""},
		{"unlabelled namespace", false, review("plain", admissionv1.Create, fresh(web)), ""},
		{"unlabelled namespace, cluster-wide", true, review("plain", admissionv1.Create, fresh(web)),
			`[{"op":"add","path":"/spec/readinessGates","value":[{"conditionType":"cloud.google.com/load-balancer-neg-ready"}]}]`},
		{"own namespace, cluster-wide", true, review("neg-controller", admissionv1.Create, fresh(web)), ""},
		{"update", true, review("default", admissionv1.Update, fresh(web)), ""},
		{"undecodable pod", true, &admissionv1.AdmissionRequest{UID: "uid-1", Namespace: "default", Operation: admissionv1.Create,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: []byte("[1]")}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wh := NewWebhook(WebhookConfig{Services: corelisters.NewServiceLister(svcs), Namespaces: corelisters.NewNamespaceLister(nss),
				ClusterWide: c.clusterWide, OwnNamespace: "neg-controller"}, klog.Background())
			body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: c.req})
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body)))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.Response == nil || !out.Response.Allowed || out.Response.UID != "uid-1" || out.Kind != "AdmissionReview" {
				t.Fatalf("response = %+v", out)
			}
			if string(out.Response.Patch) != c.wantPatch {
				t.Errorf("patch = %s, want %s", out.Response.Patch, c.wantPatch)
			}
		})
	}
	t.Run("not a review", func(t *testing.T) {
		wh := NewWebhook(WebhookConfig{}, klog.Background())
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader([]byte("{}"))))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("status %d, want 400", rec.Code)
		}
	})
}
