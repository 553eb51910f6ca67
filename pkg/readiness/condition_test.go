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
