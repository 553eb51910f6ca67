package readiness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// Injection labels and paths.
const (
	// InjectionLabel on a namespace, with value InjectionEnabled, turns gate injection on for
	// its pods.
	InjectionLabel   = "neg-controller.io/readiness-gate-injection"
	InjectionEnabled = "enabled"
	// MutatePath is where the webhook serves pod admission.
	MutatePath = "/mutate-pods"
)

// maxReviewBytes bounds an AdmissionReview body (the API server sends at most a few MB).
const maxReviewBytes = 8 << 20

// WebhookConfig configures the gate-injecting webhook.
type WebhookConfig struct {
	Services   corelisters.ServiceLister
	Namespaces corelisters.NamespaceLister
	// ClusterWide injects into every namespace, labelled or not.
	ClusterWide bool
	// OwnNamespace is the controller's namespace: never injected.
	OwnNamespace string
	// Synced reports whether the listers are filled; until then no pod gets the gate.
	Synced func() bool
	// Metrics counts the answers (none when nil).
	Metrics *Metrics
	// Bound returns the NEGs NetworkEndpointGroupBindings bind to Services (nil: none): the
	// pods of those Services get the gate too.
	Bound Binder
}

// Webhook is the mutating admission handler for pod CREATE (AdmissionReview v1).
type Webhook struct {
	cfg    WebhookConfig
	logger klog.Logger
}

// NewWebhook returns the handler.
func NewWebhook(cfg WebhookConfig, logger klog.Logger) *Webhook {
	return &Webhook{cfg: cfg, logger: logger.WithName("readiness-webhook")}
}

// ServeHTTP answers an AdmissionReview. Whatever goes wrong with the pod, the answer allows it
// (without a patch); only a request that is not an AdmissionReview gets a 400.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(rw, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxReviewBytes))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(rw, "not an AdmissionReview v1 with a request", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	patch, why, err := w.mutate(review.Request)
	switch {
	case err != nil:
		w.cfg.Metrics.observeInjection("error")
		w.logger.Error(err, "Not injecting the readiness gate", "namespace", review.Request.Namespace, "pod", podName(review.Request))
	case patch != nil:
		w.cfg.Metrics.observeInjection("injected")
	default:
		w.cfg.Metrics.observeInjection("skipped")
	}
	if patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		w.logger.V(2).Info("Injecting the readiness gate", "namespace", review.Request.Namespace,
			"pod", podName(review.Request), "reason", why)
	} else {
		w.logger.V(5).Info("Not injecting the readiness gate", "namespace", review.Request.Namespace,
			"pod", podName(review.Request), "reason", why)
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(out)
}

func podName(req *admissionv1.AdmissionRequest) string {
	if req.Name != "" {
		return req.Name
	}
	return "(generated)"
}

// mutate returns the JSON patch adding the gate, or nil and why not (err when something is
// broken rather than the pod not to be gated).
func (w *Webhook) mutate(req *admissionv1.AdmissionRequest) ([]byte, string, error) {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return nil, "not a pod creation", nil
	}
	if w.cfg.Synced != nil && !w.cfg.Synced() {
		return nil, "caches not synced yet", nil
	}
	ns := req.Namespace
	if ns == "" || ns == w.cfg.OwnNamespace {
		return nil, "the controller's own namespace", nil
	}
	if !w.cfg.ClusterWide {
		n, err := w.cfg.Namespaces.Get(ns)
		if err != nil || n.Labels[InjectionLabel] != InjectionEnabled {
			return nil, "namespace not labelled " + InjectionLabel + "=" + InjectionEnabled, nil
		}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, "", fmt.Errorf("decoding the pod: %w", err)
	}
	pod.Namespace = ns
	if hasGate(&pod) {
		return nil, "the pod has the gate already", nil
	}
	svcs, err := w.cfg.Services.Services(ns).List(labels.Everything())
	if err != nil {
		return nil, "", err
	}
	var bound []BoundNEG
	if w.cfg.Bound != nil {
		bound = w.cfg.Bound(ns)
	}
	sel := gatingServices(svcs, &pod, bound)
	if len(sel) == 0 {
		return nil, "no Service with NEGs selects the pod", nil
	}
	gate := corev1.PodReadinessGate{ConditionType: GateType}
	var op map[string]any
	if len(pod.Spec.ReadinessGates) == 0 {
		op = map[string]any{"op": "add", "path": "/spec/readinessGates", "value": []corev1.PodReadinessGate{gate}}
	} else {
		op = map[string]any{"op": "add", "path": "/spec/readinessGates/-", "value": gate}
	}
	b, err := json.Marshal([]map[string]any{op})
	if err != nil {
		return nil, "", err
	}
	return b, fmt.Sprintf("selected by Service %s", sel[0].Name), nil
}
