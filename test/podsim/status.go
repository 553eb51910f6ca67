package podsim

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages the kubelet uses for the conditions podsim writes.
const (
	reasonContainersNotReady     = "ContainersNotReady"
	reasonReadinessGatesNotReady = "ReadinessGatesNotReady"
)

// statusInput is what the kubelet stand-in knows about a running pod.
type statusInput struct {
	hostIP          string
	podIP           string
	hostIPv6        string      // "" on a single-stack node
	podIPv6         string      // "" on a single-stack node
	startTime       metav1.Time // when the containers "started"
	containersReady bool        // ReadyDelay has passed since startTime
	now             metav1.Time // for lastTransitionTime of changed conditions
}

// desiredStatus is the status the kubelet would report for a running pod: phase Running, the
// host and pod IPs (IPv4, then IPv6 on a dual-stack node), one running container status per container, and the conditions
// PodScheduled, Initialized, ContainersReady and Ready. Ready is True only when the containers
// are ready and every readiness gate's condition is True. Conditions of other types (for
// example readiness gates set by a controller) are kept as they are, and a condition's
// lastTransitionTime changes only when its status does. pod is not modified.
func desiredStatus(pod *corev1.Pod, in statusInput) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.HostIP = in.hostIP
	st.HostIPs = []corev1.HostIP{{IP: in.hostIP}}
	st.PodIP = in.podIP
	st.PodIPs = []corev1.PodIP{{IP: in.podIP}}
	if in.podIPv6 != "" {
		st.HostIPs = append(st.HostIPs, corev1.HostIP{IP: in.hostIPv6})
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: in.podIPv6})
	}
	if st.StartTime == nil {
		t := in.startTime
		st.StartTime = &t
	}
	st.ContainerStatuses = containerStatuses(pod, in)

	setCondition(&st, corev1.PodScheduled, corev1.ConditionTrue, "", "", in.now)
	setCondition(&st, corev1.PodInitialized, corev1.ConditionTrue, "", "", in.now)
	if in.containersReady {
		setCondition(&st, corev1.ContainersReady, corev1.ConditionTrue, "", "", in.now)
	} else {
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(containerNames(pod), " "))
		setCondition(&st, corev1.ContainersReady, corev1.ConditionFalse, reasonContainersNotReady, msg, in.now)
	}
	switch gateMsg := readinessGatesMessage(pod.Spec.ReadinessGates, st.Conditions); {
	case !in.containersReady:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(containerNames(pod), " "))
		setCondition(&st, corev1.PodReady, corev1.ConditionFalse, reasonContainersNotReady, msg, in.now)
	case gateMsg != "":
		setCondition(&st, corev1.PodReady, corev1.ConditionFalse, reasonReadinessGatesNotReady, gateMsg, in.now)
	default:
		setCondition(&st, corev1.PodReady, corev1.ConditionTrue, "", "", in.now)
	}
	return st
}

// readinessGatesMessage explains, like the kubelet, why the readiness gates hold the pod back,
// or returns "" when every gate's condition is True.
func readinessGatesMessage(gates []corev1.PodReadinessGate, conds []corev1.PodCondition) string {
	var msgs []string
	for _, g := range gates {
		c := findCondition(conds, g.ConditionType)
		switch {
		case c == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case c.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", g.ConditionType, c.Status))
		}
	}
	return strings.Join(msgs, ", ")
}

func containerNames(pod *corev1.Pod) []string {
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// containerStatuses reports every container as running since startTime, ready when
// containersReady. Existing statuses keep their start time.
func containerStatuses(pod *corev1.Pod, in statusInput) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		started := in.startTime
		for _, old := range pod.Status.ContainerStatuses {
			if old.Name == c.Name && old.State.Running != nil {
				started = old.State.Running.StartedAt
			}
		}
		t := true
		out = append(out, corev1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     "podsim://" + c.Image,
			ContainerID: fmt.Sprintf("podsim://%s/%s", pod.UID, c.Name),
			Ready:       in.containersReady,
			Started:     &t,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		})
	}
	return out
}

func findCondition(conds []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// setCondition sets a condition's status, reason and message, moving lastTransitionTime to now
// only when the status changes (or the condition is new).
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	if c := findCondition(st.Conditions, t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now,
	})
}
