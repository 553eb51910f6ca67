package zones

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseProviderID(t *testing.T) {
	tests := []struct {
		id                      string
		project, zone, instance string
		ok                      bool
	}{
		{id: "gce://my-project/us-central1-a/gke-pool-1-abcd", project: "my-project", zone: "us-central1-a", instance: "gke-pool-1-abcd", ok: true},
		{id: "gce://p/z/i", project: "p", zone: "z", instance: "i", ok: true},
		{id: ""},
		{id: "gce://"},
		{id: "gce://p/z"},
		{id: "gce://p//i"},
		{id: "gce:///z/i"},
		{id: "gce://p/z/"},
		{id: "gce://p/z/i/extra"},
		{id: "aws:///us-east-1a/i-0123"},
		{id: "kind://docker/kind/kind-worker"},
		{id: "GCE://p/z/i"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			project, zone, instance, ok := ParseProviderID(tc.id)
			got := []any{project, zone, instance, ok}
			want := []any{tc.project, tc.zone, tc.instance, tc.ok}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseProviderID(%q) (-want +got):\n%s", tc.id, diff)
			}
		})
	}
}

type nodeOpt func(*corev1.Node)

func node(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{ProviderID: "gce://p/us-central1-a/" + name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func providerID(id string) nodeOpt { return func(n *corev1.Node) { n.Spec.ProviderID = id } }

func label(k, v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
}

func taint(key string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
	}
}

func conditions(cs ...corev1.NodeCondition) nodeOpt {
	return func(n *corev1.Node) { n.Status.Conditions = cs }
}

func ready(s corev1.ConditionStatus) corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: s}
}

func podCIDRs(cidrs ...string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.PodCIDRs = cidrs }
}

func TestFromNode(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		want Node
	}{
		{name: "nil", node: nil, want: Node{Reason: ReasonNoZone}},
		{name: "gke node", node: node("n1"),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "instance from providerID", node: node("n1", providerID("gce://p/europe-west4-b/vm-7")),
			want: Node{Name: "n1", Zone: "europe-west4-b", Instance: "vm-7", Candidate: true}},
		{name: "providerID wins over labels", node: node("n1", label(LabelZone, "other")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "zone label fallback", node: node("n1", providerID(""), label(LabelZone, "zone-l")),
			want: Node{Name: "n1", Zone: "zone-l", Instance: "n1", Candidate: true}},
		{name: "deprecated zone label fallback", node: node("n1", providerID("kind://x/y/z"), label(LabelZoneDeprecated, "zone-d")),
			want: Node{Name: "n1", Zone: "zone-d", Instance: "n1", Candidate: true}},
		{name: "GA label preferred over deprecated", node: node("n1", providerID(""), label(LabelZone, "zone-l"), label(LabelZoneDeprecated, "zone-d")),
			want: Node{Name: "n1", Zone: "zone-l", Instance: "n1", Candidate: true}},
		{name: "empty zone in providerID falls back", node: node("n1", providerID("gce://p//vm"), label(LabelZone, "zone-l")),
			want: Node{Name: "n1", Zone: "zone-l", Instance: "n1", Candidate: true}},
		{name: "no zone", node: node("vk", providerID("")),
			want: Node{Name: "vk", Instance: "vk", Reason: ReasonNoZone}},
		{name: "not ready", node: node("n1", conditions(ready(corev1.ConditionFalse))),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonNotReady}},
		{name: "ready unknown", node: node("n1", conditions(ready(corev1.ConditionUnknown))),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonNotReady}},
		{name: "no conditions", node: node("n1", conditions()),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonNotReady}},
		{name: "no ready condition", node: node("n1", conditions(corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse})),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonNotReady}},
		{name: "one of two ready conditions false", node: node("n1", conditions(ready(corev1.ConditionTrue), ready(corev1.ConditionFalse))),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonNotReady}},
		{name: "exclude-from-external-load-balancers", node: node("n1", label(LabelExcludeFromLB, "")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonExcludedByLabel}},
		{name: "exclude-from-external-load-balancers=false still excludes (presence)", node: node("n1", label(LabelExcludeFromLB, "false")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonExcludedByLabel}},
		{name: "alpha exclude-balancer", node: node("n1", label(LabelExcludeBalancerAlpha, "true")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonExcludedByLabel}},
		{name: "master", node: node("n1", label(LabelMaster, "")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonMaster}},
		{name: "control-plane is not excluded", node: node("n1", label("node-role.kubernetes.io/control-plane", "")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "autoscaler deletion taint", node: node("n1", taint(TaintToBeDeletedByAutoscaler)),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Reason: ReasonToBeDeleted}},
		{name: "other taints ignored", node: node("n1", taint("node.kubernetes.io/unschedulable"), taint("DeletionCandidateOfClusterAutoscaler")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "cordoned is still a candidate", node: node("n1", func(n *corev1.Node) { n.Spec.Unschedulable = true }),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "first reason wins", node: node("n1", providerID(""), conditions(), label(LabelExcludeFromLB, ""), taint(TaintToBeDeletedByAutoscaler)),
			want: Node{Name: "n1", Instance: "n1", Reason: ReasonToBeDeleted}},
		{name: "not ready before no zone", node: node("n1", providerID(""), conditions()),
			want: Node{Name: "n1", Instance: "n1", Reason: ReasonNotReady}},
		{name: "dual-stack pod ranges", node: node("n1", podCIDRs("10.64.1.0/24", "fd00:10:64:1::/112")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true, DualStack: true}},
		{name: "IPv6 first is dual-stack too", node: node("n1", podCIDRs("fd00:10:64:1::/112", "10.64.1.0/24")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true, DualStack: true}},
		{name: "one family is not dual-stack", node: node("n1", podCIDRs("10.64.1.0/24")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
		{name: "malformed range ignored", node: node("n1", podCIDRs("bogus", "fd00::/112")),
			want: Node{Name: "n1", Zone: "us-central1-a", Instance: "n1", Candidate: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, FromNode(tc.node)); diff != "" {
				t.Errorf("FromNode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCandidateZones(t *testing.T) {
	tests := []struct {
		name  string
		nodes []Node
		want  []string
	}{
		{name: "none", nodes: nil, want: nil},
		{name: "no candidates", nodes: []Node{{Name: "a", Zone: "z1", Reason: ReasonNotReady}}, want: nil},
		{name: "sorted unique", nodes: []Node{
			{Name: "a", Zone: "z2", Candidate: true},
			{Name: "b", Zone: "z1", Candidate: true},
			{Name: "c", Zone: "z2", Candidate: true},
			{Name: "d", Zone: "z3", Reason: ReasonExcludedByLabel},
		}, want: []string{"z1", "z2"}},
		{name: "zone with one candidate among non-candidates", nodes: []Node{
			{Name: "a", Zone: "z1", Reason: ReasonNotReady},
			{Name: "b", Zone: "z1", Candidate: true},
		}, want: []string{"z1"}},
		{name: "candidate without zone ignored", nodes: []Node{{Name: "a", Candidate: true}}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, CandidateZones(tc.nodes)); diff != "" {
				t.Errorf("CandidateZones (-want +got):\n%s", diff)
			}
		})
	}
}

func TestByName(t *testing.T) {
	a := Node{Name: "a", Zone: "z1"}
	b := Node{Name: "b", Zone: "z2"}
	b2 := Node{Name: "b", Zone: "z3"}
	want := map[string]Node{"a": a, "b": b2}
	if diff := cmp.Diff(want, ByName([]Node{a, b, b2})); diff != "" {
		t.Errorf("ByName (-want +got):\n%s", diff)
	}
}
