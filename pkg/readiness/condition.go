package readiness

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// GKE's readiness gate and condition type, and the reasons of the condition (also the reasons
// of the pod events).
const (
	GateType corev1.PodConditionType = "cloud.google.com/load-balancer-neg-ready"

	ReasonReady              = "LoadBalancerNegReady"
	ReasonNotReady           = "LoadBalancerNegNotReady"
	ReasonTimeout            = "LoadBalancerNegTimeout"
	ReasonWithoutHealthCheck = "LoadBalancerNegWithoutHealthCheck"
)

// EventSource is the component of the pod events (GKE's).
const EventSource = "neg-readiness-reflector"

// DefaultTimeout is how long after its creation a pod waits at most (GKE's unreadyTimeout).
const DefaultTimeout = 10 * time.Minute

// WithoutHealthCheck says what a pod whose NEG is in no health-checked backend service gets.
type WithoutHealthCheck string

const (
	// WithoutHealthCheckWait keeps the pod waiting (until the timeout): a standalone NEG that is
	// not wired into its load balancer yet must not let a rollout proceed.
	WithoutHealthCheckWait WithoutHealthCheck = "wait"
	// WithoutHealthCheckReady marks the pod True at once, as GKE does.
	WithoutHealthCheckReady WithoutHealthCheck = "ready"
)

// healthy is the health state that opens the gate.
const healthy = "HEALTHY"

// isHealthy reports whether a health entry opens the gate: every state it reports is HEALTHY —
// healthState (the IPv4 address) and, for a dual-stack or IPv6 endpoint whose backend service
// checks IPv6, ipv6HealthState — and it reports at least one.
func isHealthy(h gce.Health) bool {
	return (h.State == healthy || h.State == "") && (h.IPv6State == healthy || h.IPv6State == "") &&
		(h.State != "" || h.IPv6State != "")
}

// describe renders a health entry's states for messages: "HEALTHY", "HEALTHY, IPv6 UNKNOWN".
func describe(h gce.Health) string {
	switch {
	case h.IPv6State == "":
		return h.State
	case h.State == "":
		return "IPv6 " + h.IPv6State
	}
	return h.State + ", IPv6 " + h.IPv6State
}

// lookupKey is the key a pod's endpoint is found under in a listing: the endpoint without its
// IPv6 address when it has an IPv4 one. A pod is then found whether its Service's NEG endpoints
// are IPv4 or dual-stack (and while they migrate from one to the other), without the reflector
// knowing which.
func lookupKey(e neg.Endpoint) neg.Endpoint {
	if e.IP != "" {
		e.IPv6 = ""
	}
	return e
}

// podEndpoint is the pod's endpoint (without instance) for lookups: its IPv4 address if it has
// one, else its IPv6 address; ok is false while it has no IP.
func podEndpoint(pod *corev1.Pod, port int32) (neg.Endpoint, bool) {
	ips := []string{pod.Status.PodIP}
	for _, p := range pod.Status.PodIPs {
		ips = append(ips, p.IP)
	}
	var v6 string
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
		case a.Is4():
			return neg.Endpoint{IP: ip, Port: int64(port)}, true
		case v6 == "":
			v6 = a.String()
		}
	}
	return neg.Endpoint{IPv6: v6, Port: int64(port)}, v6 != ""
}

// target is one endpoint of a pod in one zonal NEG.
type target struct {
	ref      negRef
	endpoint neg.Endpoint
}

// negRef names one zonal NEG.
type negRef struct {
	Zone, Name string
}

// listing is one health listing of a NEG.
type listing struct {
	// at is when the listing was asked for.
	at time.Time
	// healths are the health entries of each listed endpoint.
	healths map[neg.Endpoint][]gce.Health
	// checked: at least one endpoint has a backend service health entry.
	checked bool
}

// newListing indexes a ListNetworkEndpoints result taken at at.
func newListing(at time.Time, eps []gce.EndpointHealth) *listing {
	l := &listing{at: at, healths: make(map[neg.Endpoint][]gce.Health, len(eps))}
	for _, e := range eps {
		var hs []gce.Health
		for _, h := range e.Healths {
			if h.BackendService == "" { // forwarding rules, health check services: ignored, as on GKE
				continue
			}
			hs = append(hs, h)
			l.checked = true
		}
		l.healths[lookupKey(e.Endpoint)] = hs
	}
	return l
}

// input is everything decide looks at for one pod.
type input struct {
	// gated: some Service selecting the pod wants NEGs.
	gated bool
	// negs are the names of the NEGs the pod belongs to (sorted), for messages.
	negs []string
	// targets are the pod's endpoints in those NEGs (empty until the pod has an IP and a node).
	targets []target
	// listings are the latest usable health listings by NEG (taken after the pod was created).
	listings map[negRef]*listing
	// created is the pod's creation time; now the current time.
	created, now time.Time
	timeout      time.Duration
	withoutHC    WithoutHealthCheck
}

// decision is the condition the pod should have.
type decision struct {
	status  corev1.ConditionStatus
	reason  string
	message string
}

// decide returns the condition of a gated pod (see the package documentation for the order).
func decide(in input) decision {
	gate := string(GateType)
	if !in.gated {
		return decision{corev1.ConditionTrue, ReasonReady,
			fmt.Sprintf("Pod does not belong to any NEG. Marking condition %q to True.", gate)}
	}
	for _, t := range in.targets {
		l := in.listings[t.ref]
		if l == nil {
			continue
		}
		for _, h := range l.healths[t.endpoint] {
			if isHealthy(h) {
				return decision{corev1.ConditionTrue, ReasonReady,
					fmt.Sprintf("Pod has become Healthy in NEG %q attached to BackendService %q. Marking condition %q to True.",
						t.ref.Name, path.Base(h.BackendService), gate)}
			}
		}
	}
	if in.withoutHC == WithoutHealthCheckReady {
		for _, t := range in.targets {
			if l := in.listings[t.ref]; l != nil && !l.checked {
				if _, attached := l.healths[t.endpoint]; attached {
					return decision{corev1.ConditionTrue, ReasonWithoutHealthCheck,
						fmt.Sprintf("Pod is in NEG %q. NEG is not attached to any BackendService with health checking. Marking condition %q to True.",
							t.ref.Name, gate)}
				}
			}
		}
	}
	if !in.now.Before(in.created.Add(in.timeout)) {
		return decision{corev1.ConditionTrue, ReasonTimeout,
			fmt.Sprintf("Timeout waiting for pod to become healthy in at least one of the NEG(s): %v. Marking condition %q to True.",
				in.negs, gate)}
	}
	msg := fmt.Sprintf("Waiting for pod to become healthy in at least one of the NEG(s): %v", in.negs)
	if d := waitDetail(in); d != "" {
		msg += " (" + d + ")"
	}
	return decision{corev1.ConditionFalse, ReasonNotReady, msg}
}

// waitDetail explains, per target, what the pod waits for: the load balancer's view, so that
// users can debug from the condition.
func waitDetail(in input) string {
	if len(in.negs) == 0 {
		return "the Service's NEGs are not created yet"
	}
	if len(in.targets) == 0 {
		return "the pod has no IP, node or zone with a NEG yet"
	}
	var parts []string
	for _, t := range in.targets {
		addr := neg.Endpoint{IP: t.endpoint.IP, IPv6: t.endpoint.IPv6, Port: t.endpoint.Port} // without instance
		ep := fmt.Sprintf("endpoint %s in zone %s", addr, t.ref.Zone)
		l := in.listings[t.ref]
		hs, attached := map[neg.Endpoint][]gce.Health(nil), false
		if l != nil {
			hs = l.healths
			_, attached = hs[t.endpoint]
		}
		switch {
		case l == nil:
			parts = append(parts, ep+": health not read yet")
		case !attached:
			parts = append(parts, ep+": not attached yet")
		case !l.checked:
			parts = append(parts, ep+": NEG is in no backend service with health checking")
		case len(hs[t.endpoint]) == 0:
			parts = append(parts, ep+": no health reported yet")
		default:
			var states []string
			for _, h := range hs[t.endpoint] {
				states = append(states, fmt.Sprintf("%s in BackendService %q", describe(h), path.Base(h.BackendService)))
			}
			slices.Sort(states)
			parts = append(parts, ep+": "+strings.Join(states, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// condition returns the pod's gate condition, or nil.
func condition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == GateType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// hasGate reports whether the pod has the readiness gate.
func hasGate(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.Spec.ReadinessGates, func(g corev1.PodReadinessGate) bool {
		return g.ConditionType == GateType
	})
}

// NeedsWork reports whether the reflector has anything to do for the pod: gated, condition not
// True, not terminating. Of any other pod the reflector reads only the namespace and name, so
// its informer cache may hold PodMetadata instead (pkg/app's transform does); whatever the
// cache holds that is not a *corev1.Pod counts as a pod with nothing to do.
func NeedsWork(pod *corev1.Pod) bool {
	if pod == nil || pod.DeletionTimestamp != nil || !hasGate(pod) {
		return false
	}
	c := condition(pod)
	return c == nil || c.Status != corev1.ConditionTrue
}

// PodMetadata is what the pod cache needs to hold of a pod for which NeedsWork is false: its
// namespace and name, which the reflector reads, and its resource version, by which the
// informer tells updates from resyncs. About 300 bytes instead of 2–3 KiB for a pod trimmed to
// the fields the reflector reads of a pod it has work for.
func PodMetadata(pod *corev1.Pod) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, ResourceVersion: pod.ResourceVersion}}
}
