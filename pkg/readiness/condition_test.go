package readiness

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestDecide(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := negRef{Zone: "z-a", Name: "neg1"}
	ep := neg.Endpoint{Instance: "node-1", IP: "10.64.1.5", Port: 8080}
	other := neg.Endpoint{Instance: "node-2", IP: "10.64.2.5", Port: 8080}
	bs := "https://www.googleapis.com/compute/v1/projects/p/global/backendServices/web-bs"
	list := func(eps ...gce.EndpointHealth) map[negRef]*listing {
		return map[negRef]*listing{ref: newListing(created, eps)}
	}
	h := func(e neg.Endpoint, backend, state string) gce.EndpointHealth {
		out := gce.EndpointHealth{Endpoint: e}
		if state != "" {
			out.Healths = []gce.Health{{BackendService: backend, State: state}}
		}
		return out
	}
	dual := ep
	dual.IPv6 = "fd00:64:1::5"
	v6only := neg.Endpoint{Instance: "node-1", IPv6: "fd00:64:1::5", Port: 8080}
	h6 := func(e neg.Endpoint, backend, v4state, v6state string) gce.EndpointHealth {
		return gce.EndpointHealth{Endpoint: e, Healths: []gce.Health{{BackendService: backend, State: v4state, IPv6State: v6state}}}
	}
	base := input{gated: true, negs: []string{"neg1"}, targets: []target{{ref, ep}}, created: created,
		now: created.Add(time.Minute), timeout: 10 * time.Minute, withoutHC: WithoutHealthCheckWait}
	with := func(f func(*input)) input { in := base; f(&in); return in }
	cases := []struct {
		name    string
		in      input
		status  corev1.ConditionStatus
		reason  string
		message string // substring
	}{
		{"not gated any more: fail open", with(func(in *input) { in.gated = false; in.negs, in.targets = nil, nil }),
			corev1.ConditionTrue, ReasonReady, "Pod does not belong to any NEG."},
		{"no listing yet", base, corev1.ConditionFalse, ReasonNotReady, "health not read yet"},
		{"healthy", with(func(in *input) { in.listings = list(h(ep, bs, "HEALTHY")) }),
			corev1.ConditionTrue, ReasonReady, `Pod has become Healthy in NEG "neg1" attached to BackendService "web-bs". Marking condition "cloud.google.com/load-balancer-neg-ready" to True.`},
		{"unhealthy", with(func(in *input) { in.listings = list(h(ep, bs, "UNHEALTHY")) }),
			corev1.ConditionFalse, ReasonNotReady, `UNHEALTHY in BackendService "web-bs"`},
		{"not attached", with(func(in *input) { in.listings = list(h(other, bs, "HEALTHY")) }),
			corev1.ConditionFalse, ReasonNotReady, "not attached yet"},
		{"healthy only for a forwarding rule: ignored", with(func(in *input) { in.listings = list(h(ep, "", "HEALTHY")) }),
			corev1.ConditionFalse, ReasonNotReady, "no backend service with health checking"},
		{"without health check, wait", with(func(in *input) { in.listings = list(h(ep, "", "")) }),
			corev1.ConditionFalse, ReasonNotReady, "Waiting for pod to become healthy in at least one of the NEG(s): [neg1]"},
		{"without health check, ready", with(func(in *input) { in.listings = list(h(ep, "", "")); in.withoutHC = WithoutHealthCheckReady }),
			corev1.ConditionTrue, ReasonWithoutHealthCheck, `Pod is in NEG "neg1". NEG is not attached to any BackendService with health checking.`},
		{"without health check, ready, not attached yet", with(func(in *input) { in.listings = list(h(other, "", "")); in.withoutHC = WithoutHealthCheckReady }),
			corev1.ConditionFalse, ReasonNotReady, "not attached yet"},
		{"health checked elsewhere in the NEG, mode ready: waits", with(func(in *input) {
			in.listings = list(h(ep, "", ""), h(other, bs, "HEALTHY"))
			in.withoutHC = WithoutHealthCheckReady
		}), corev1.ConditionFalse, ReasonNotReady, "no health reported yet"},
		{"timeout", with(func(in *input) { in.now = created.Add(10 * time.Minute) }),
			corev1.ConditionTrue, ReasonTimeout, "Timeout waiting for pod to become healthy in at least one of the NEG(s): [neg1]."},
		{"healthy wins over timeout", with(func(in *input) { in.now = created.Add(time.Hour); in.listings = list(h(ep, bs, "HEALTHY")) }),
			corev1.ConditionTrue, ReasonReady, "Healthy"},
		{"NEGs not created yet", with(func(in *input) { in.negs, in.targets = nil, nil }),
			corev1.ConditionFalse, ReasonNotReady, "not created yet"},
		{"pod without IP", with(func(in *input) { in.targets = nil }),
			corev1.ConditionFalse, ReasonNotReady, "no IP, node or zone"},
		// Dual-stack: the pod's target (its IPv4 address) finds the dual-stack endpoint, and
		// both health states must be HEALTHY when both are reported.
		{"dual-stack endpoint, both healthy", with(func(in *input) { in.listings = list(h6(dual, bs, "HEALTHY", "HEALTHY")) }),
			corev1.ConditionTrue, ReasonReady, "Pod has become Healthy"},
		{"dual-stack endpoint, IPv4 only checked", with(func(in *input) { in.listings = list(h6(dual, bs, "HEALTHY", "")) }),
			corev1.ConditionTrue, ReasonReady, "Pod has become Healthy"},
		{"dual-stack endpoint, IPv6 unhealthy", with(func(in *input) { in.listings = list(h6(dual, bs, "HEALTHY", "UNHEALTHY")) }),
			corev1.ConditionFalse, ReasonNotReady, `HEALTHY, IPv6 UNHEALTHY in BackendService "web-bs"`},
		{"IPv6-only endpoint, IPv6 healthy", with(func(in *input) {
			in.targets = []target{{ref, v6only}}
			in.listings = list(h6(v6only, bs, "", "HEALTHY"))
		}), corev1.ConditionTrue, ReasonReady, "Pod has become Healthy"},
		{"IPv6-only endpoint, IPv6 unknown", with(func(in *input) {
			in.targets = []target{{ref, v6only}}
			in.listings = list(h6(v6only, bs, "", "UNKNOWN"))
		}), corev1.ConditionFalse, ReasonNotReady, `endpoint [fd00:64:1::5]:8080 in zone z-a: IPv6 UNKNOWN in BackendService "web-bs"`},
		{"entry without any state", with(func(in *input) { in.listings = list(h6(dual, bs, "", "")) }),
			corev1.ConditionFalse, ReasonNotReady, "Waiting"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.in)
			if d.status != c.status || d.reason != c.reason || !strings.Contains(d.message, c.message) {
				t.Errorf("decide = %+v, want %s/%s with message containing %q", d, c.status, c.reason, c.message)
			}
		})
	}
}

func TestPodEndpoint(t *testing.T) {
	pod := func(ip string, ips ...string) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{PodIP: ip}}
		for _, x := range ips {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: x})
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want neg.Endpoint
		ok   bool
	}{
		{"no IP", pod(""), neg.Endpoint{Port: 80}, false},
		{"IPv4", pod("10.0.0.1", "10.0.0.1"), neg.Endpoint{IP: "10.0.0.1", Port: 80}, true},
		{"dual-stack, IPv6 primary: the IPv4 address", pod("fd00::1", "fd00::1", "10.0.0.1"), neg.Endpoint{IP: "10.0.0.1", Port: 80}, true},
		{"IPv6 only, canonical", pod("fd00:0::1"), neg.Endpoint{IPv6: "fd00::1", Port: 80}, true},
	} {
		got, ok := podEndpoint(tc.pod, 80)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: podEndpoint = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestListingFindsDualStackEndpoints: a listing indexes dual-stack endpoints under their IPv4
// address, so a pod's target is found whether its NEG endpoint is IPv4 or dual-stack.
func TestListingFindsDualStackEndpoints(t *testing.T) {
	v4 := neg.Endpoint{Instance: "n", IP: "10.0.0.1", Port: 80}
	dual := neg.Endpoint{Instance: "n", IP: "10.0.0.2", IPv6: "fd00::2", Port: 80}
	v6 := neg.Endpoint{Instance: "n", IPv6: "fd00::3", Port: 80}
	l := newListing(time.Time{}, []gce.EndpointHealth{{Endpoint: v4}, {Endpoint: dual}, {Endpoint: v6}})
	for _, key := range []neg.Endpoint{v4, {Instance: "n", IP: "10.0.0.2", Port: 80}, v6} {
		if _, ok := l.healths[key]; !ok {
			t.Errorf("listing has no entry for %v: %v", key, l.healths)
		}
	}
}
