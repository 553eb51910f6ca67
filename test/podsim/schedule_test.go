package podsim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func testNodes(specs []NodeSpec) []*corev1.Node {
	var out []*corev1.Node
	for _, s := range specs {
		n := nodeObject("p", s)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		out = append(out, n)
	}
	return out
}

func TestPickNodeSpreadsOverZonesThenNodes(t *testing.T) {
	nodes := testNodes(DefaultNodes([]string{"z-a", "z-b", "z-c"}, 2))
	load := map[string]int{}
	var got []string
	for range 6 {
		n := pickNode(&corev1.Pod{}, nodes, load)
		load[n]++
		got = append(got, n)
	}
	want := []string{"node-z-a-0", "node-z-b-0", "node-z-c-0", "node-z-a-1", "node-z-b-1", "node-z-c-1"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("placements = %v, want %v", got, want)
		}
	}
	// A pod gone from zone b: its replacement goes back there.
	load["node-z-b-1"]--
	if n := pickNode(&corev1.Pod{}, nodes, load); n != "node-z-b-1" {
		t.Errorf("replacement went to %s, want node-z-b-1", n)
	}
}

func TestPickNodeFilters(t *testing.T) {
	nodes := testNodes(DefaultNodes([]string{"z-a", "z-b", "z-c"}, 1))
	nodes[0].Spec.Unschedulable = true
	nodes[1].Status.Conditions[0].Status = corev1.ConditionFalse
	if n := pickNode(&corev1.Pod{}, nodes, nil); n != "node-z-c-0" {
		t.Errorf("got %s, want the only schedulable Ready node node-z-c-0", n)
	}
	delete(nodes[2].Labels, ManagedLabel)
	if n := pickNode(&corev1.Pod{}, nodes, nil); n != "" {
		t.Errorf("got %s, want none (unmanaged node)", n)
	}

	nodes = testNodes(DefaultNodes([]string{"z-a", "z-b"}, 1))
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelTopologyZone: "z-b"}}}
	if n := pickNode(pod, nodes, map[string]int{"node-z-b-0": 5}); n != "node-z-b-0" {
		t.Errorf("got %s, want node-z-b-0 (nodeSelector)", n)
	}
}

func TestWantsPodsim(t *testing.T) {
	for _, tc := range []struct {
		spec corev1.PodSpec
		want bool
	}{
		{corev1.PodSpec{}, true},
		{corev1.PodSpec{SchedulerName: corev1.DefaultSchedulerName}, true},
		{corev1.PodSpec{SchedulerName: "other"}, false},
		{corev1.PodSpec{NodeName: "n"}, false},
	} {
		if got := wantsPodsim(&corev1.Pod{Spec: tc.spec}); got != tc.want {
			t.Errorf("wantsPodsim(%+v) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}

func TestDefaultNodes(t *testing.T) {
	got := DefaultNodes([]string{"us-central1-a", "us-central1-b"}, 2)
	want := []NodeSpec{
		{Name: "node-us-central1-a-0", Zone: "us-central1-a", PodCIDR: "10.64.1.0/24", IP: "10.1.0.1"},
		{Name: "node-us-central1-a-1", Zone: "us-central1-a", PodCIDR: "10.64.2.0/24", IP: "10.1.0.2"},
		{Name: "node-us-central1-b-0", Zone: "us-central1-b", PodCIDR: "10.64.3.0/24", IP: "10.1.0.3"},
		{Name: "node-us-central1-b-1", Zone: "us-central1-b", PodCIDR: "10.64.4.0/24", IP: "10.1.0.4"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d nodes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("node %d = %+v, want %+v", i, got[i], want[i])
		}
		if err := got[i].validate(); err != nil {
			t.Error(err)
		}
	}
	if err := (NodeSpec{Name: "n", Zone: "z", PodCIDR: "127.64.1.0/24", IP: "10.1.0.1"}).validate(); err == nil {
		t.Error("loopback pod CIDR accepted")
	}
	if region("us-central1-a") != "us-central1" {
		t.Error("region")
	}
}
