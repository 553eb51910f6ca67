package podsim

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// wantsPodsim reports whether podsim should bind pod: it is unbound and asks for the default
// scheduler.
func wantsPodsim(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName)
}

// schedulable reports whether pods may be bound to node: managed by podsim, Ready, not cordoned
// and with a pod CIDR.
func schedulable(node *corev1.Node) bool {
	return isManaged(node) && nodeReady(node) && !node.Spec.Unschedulable && node.Spec.PodCIDR != ""
}

// pickNode chooses a node for pod, spreading pods like the default scheduler's topology spread:
// among schedulable nodes whose labels match the pod's nodeSelector, the zone with the fewest
// pods, then the node with the fewest pods in it, ties broken by name. load counts the
// non-terminating pods per node. It returns "" when no node fits.
func pickNode(pod *corev1.Pod, nodes []*corev1.Node, load map[string]int) string {
	sel := labels.SelectorFromSet(pod.Spec.NodeSelector)
	type cand struct {
		name, zone string
	}
	var cands []cand
	zoneLoad := map[string]int{}
	for _, n := range nodes {
		if !schedulable(n) || !sel.Matches(labels.Set(n.Labels)) {
			continue
		}
		z := n.Labels[corev1.LabelTopologyZone]
		cands = append(cands, cand{n.Name, z})
		zoneLoad[z] += load[n.Name]
	}
	if len(cands) == 0 {
		return ""
	}
	best := slices.MinFunc(cands, func(a, b cand) int {
		return cmp.Or(
			cmp.Compare(zoneLoad[a.zone], zoneLoad[b.zone]),
			cmp.Compare(load[a.name], load[b.name]),
			cmp.Compare(a.name, b.name),
		)
	})
	return best.name
}
