// Package readiness implements the pod readiness gate cloud.google.com/load-balancer-neg-ready:
// a reflector that sets the gate's pod condition from the load balancer's view of the pod's NEG
// endpoint, and a mutating admission webhook (with its own certificates) that adds the gate to
// pods of NEG-enabled Services at creation.
//
// Reflector. A pod is considered when it has the readiness gate, its condition is not True
// yet, and it is not terminating. The Services of its namespace whose selector matches it and
// that want NEGs (cloud.google.com/neg or solutions.cloud.google.com/hybrid-neg with
// exposed_ports or ingress) gate it; their cloud.google.com/neg-status (hybrid-neg-status) names
// the NEGs. Services with NEGs bound by NetworkEndpointGroupBindings (Config.Bound, from
// pkg/negbinding: the zonal NEGs recorded in the bindings' status) gate the pods they select
// too. The pod's endpoint in each NEG is its IP and the Service port's target port, on the
// GCE instance of its node, in the NEG of the node's zone; for hybrid NEGs (Config.Hybrid) the
// zone is the node's mapped GCE zone and there is no instance.
// The condition (GKE's type, reasons and messages) is decided, in this order, by decide:
//
//	no Service selecting the pod wants NEGs            True  LoadBalancerNegReady (fail open)
//	the endpoint is HEALTHY for some backend service    True  LoadBalancerNegReady
//	the NEG is in no health-checked backend service     True  LoadBalancerNegWithoutHealthCheck
//	  and WithoutHealthCheck is Ready
//	creation + Timeout has passed                       True  LoadBalancerNegTimeout (fail open)
//	otherwise                                           False LoadBalancerNegNotReady
//
// GKE leaves the status empty while waiting; this package writes False, which kubelet treats
// the same (anything but True keeps the pod unready) and which `kubectl wait` and tools that
// read conditions understand. A True condition is never changed again (kubelet only needs the
// gate once; GKE does the same).
//
// "Health-checked" is judged per NEG listing, as GKE does: when at least one endpoint of the
// listing has a health entry from a backend service, the NEG is in a health-checked backend
// service. Only backend-service entries count. GKE marks pods True at once when the NEG is in
// no such backend service, which lets a rollout outrun the wiring of a standalone NEG into its
// load balancer (kubernetes/ingress-gce#1718); here that is WithoutHealthCheck, and the default
// (Wait) waits for the health check, bounded by the timeout.
//
// Polling. A NEG is listed with health (ListNetworkEndpoints withHealth, which is slow and
// never used by the NEG sync) only while some pod waits on it: one goroutine per such NEG
// lists it every PollInterval (1 s) and re-queues the pods waiting on it, backing off
// exponentially (ErrorBackoff up to MaxErrorBackoff) after errors, and stops when no pod waits.
// A listing taken before a pod was created is never used for that pod.
//
// Timeout. A waiting pod is re-queued at creation + Timeout by the work queue's clock, so the
// fail-open happens on time, not at the next pod event.
//
// Writes. The condition is written with a strategic merge patch of status.conditions (merge
// key type) on the pods/status subresource, so other conditions are preserved; only when its
// status, reason or message changes. Each change of reason records a Normal event on the pod
// (source neg-readiness-reflector) with the reason as event reason.
//
// Webhook. Webhook is an http.Handler for AdmissionReview v1 on pod CREATE: it adds the gate
// (a JSON patch of spec.readinessGates) to pods that a Service wanting NEGs (or with bound NEGs)
// selects, when the pod's namespace is labelled neg-controller.io/readiness-gate-injection=enabled
// or injection is cluster-wide, and never in the controller's own namespace. It never refuses a pod: errors
// answer "allowed" without a patch (the configuration's failurePolicy is Ignore too). Pods
// created before their Service get no gate.
//
// Certificates. CertManager keeps a self-signed CA and a serving certificate for the webhook's
// host names in a kubernetes.io/tls Secret of the controller's namespace (keys ca.crt, tls.crt,
// tls.key), creating it when missing, re-issuing the serving certificate when it nears expiry
// or its names change and the CA when it nears expiry, and patches the CA into every webhook of
// the MutatingWebhookConfiguration. A configuration annotated cert-manager.io/inject-ca-from is
// left alone and the Secret is only read (cert-manager fills it). Every replica may run it: all
// writes are conditional on the version read (create or update with resourceVersion), so
// replicas converge on one certificate.
package readiness
