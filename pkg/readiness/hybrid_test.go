package readiness

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// awsNode is a node of another cloud: no GCE providerID, a foreign zone label.
func awsNode() *corev1.Node {
	n := testNode()
	n.Spec.ProviderID = "aws:///eu-west-1a/i-0123"
	n.Labels = map[string]string{zones.LabelZone: "eu-west-1a"}
	return n
}

var hybridPlacement = Placement{Zones: zones.Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b"}}}

// hybridService is a Service as k8s-hybrid-neg-controller's users annotate it.
func hybridService() *corev1.Service {
	s := testService(false)
	s.Annotations[annotation.HybridNEGKey] = `{"exposed_ports":{"80":{}}}`
	s.Annotations[annotation.HybridNEGStatusKey] = `{"network_endpoint_groups":{"80":"hyb-web"},"zones":["europe-west1-b"]}`
	return s
}

func targetStrings(targets []target) string {
	var out []string
	for _, tg := range targets {
		out = append(out, tg.ref.Zone+"/"+tg.ref.Name+"/"+tg.endpoint.String())
	}
	return strings.Join(out, ",")
}

// TestPodTargetsHybrid: one row per way a pod lands in a hybrid NEG (or does not).
func TestPodTargetsHybrid(t *testing.T) {
	gkeInNonGCP := testService(true)
	both := hybridService()
	both.Annotations[annotation.NEGKey] = `{"exposed_ports":{"80":{}}}`
	nonGCP := hybridPlacement
	nonGCP.NonGCPMode = true
	tests := []struct {
		name     string
		svc      *corev1.Service
		node     *corev1.Node
		hp       Placement
		wantNEGs string
		want     string
	}{
		{"hybrid annotation: mapped zone, no instance", hybridService(), awsNode(), hybridPlacement,
			"hyb-web", "europe-west1-b/hyb-web/10.64.1.5:8080"},
		{"hybrid annotation in non-GCP mode too", hybridService(), awsNode(), nonGCP,
			"hyb-web", "europe-west1-b/hyb-web/10.64.1.5:8080"},
		{"hybrid annotation, unmapped node: no target", hybridService(), testNode(), hybridPlacement, "hyb-web", ""},
		{"cloud.google.com/neg in non-GCP mode: neg-status, mapped zone", gkeInNonGCP, awsNode(), nonGCP,
			"k8s1-neg-web", "europe-west1-b/k8s1-neg-web/10.64.1.5:8080"},
		{"cloud.google.com/neg in GCE mode: GCE zone and instance", testService(true), testNode(), hybridPlacement,
			"k8s1-neg-web", "us-central1-a/k8s1-neg-web/node-1/10.64.1.5:8080"},
		{"both annotations: nothing", both, awsNode(), hybridPlacement, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			negs, targets := podTargets([]*corev1.Service{tc.svc}, testPod(), tc.node, tc.hp)
			if got := strings.Join(negs, ","); got != tc.wantNEGs {
				t.Errorf("negs = %q, want %q", got, tc.wantNEGs)
			}
			if got := targetStrings(targets); got != tc.want {
				t.Errorf("targets = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWantsNEGsHybrid: the hybrid annotation gates pods like cloud.google.com/neg.
func TestWantsNEGsHybrid(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		want bool
	}{
		{map[string]string{annotation.HybridNEGKey: `{"exposed_ports":{"80":{}}}`}, true},
		{map[string]string{annotation.HybridNEGKey: `{}`}, false},
		{map[string]string{annotation.HybridNEGKey: `{`}, true}, // unparsable: keep gating
		{map[string]string{annotation.HybridNEGKey: `{}`, annotation.NEGKey: `{}`}, true},
		{map[string]string{annotation.HybridNEGStatusKey: `{}`}, false},
	} {
		svc := testService(false)
		svc.Annotations = tc.ann
		if got := wantsNEGs(svc); got != tc.want {
			t.Errorf("wantsNEGs(%v) = %v, want %v", tc.ann, got, tc.want)
		}
	}
}
