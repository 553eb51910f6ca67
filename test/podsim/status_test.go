package podsim

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const negReady corev1.PodConditionType = "cloud.google.com/load-balancer-neg-ready"

func gatedPod(gateStatus corev1.ConditionStatus) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "app:1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: negReady}},
		},
	}
	if gateStatus != "" {
		pod.Status.Conditions = []corev1.PodCondition{{Type: negReady, Status: gateStatus, Reason: "LoadBalancerNegReady"}}
	}
	return pod
}

func TestDesiredStatusReady(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	in := statusInput{hostIP: "10.1.0.1", podIP: "10.64.1.2", startTime: t0, now: t0}
	for _, tc := range []struct {
		name            string
		pod             *corev1.Pod
		containersReady bool
		wantReady       corev1.ConditionStatus
		wantReason      string
	}{
		{"containers not ready", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}, false, corev1.ConditionFalse, reasonContainersNotReady},
		{"no gates", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}, true, corev1.ConditionTrue, ""},
		{"gate condition missing", gatedPod(""), true, corev1.ConditionFalse, reasonReadinessGatesNotReady},
		{"gate False", gatedPod(corev1.ConditionFalse), true, corev1.ConditionFalse, reasonReadinessGatesNotReady},
		{"gate True", gatedPod(corev1.ConditionTrue), true, corev1.ConditionTrue, ""},
		{"gate True, containers not ready", gatedPod(corev1.ConditionTrue), false, corev1.ConditionFalse, reasonContainersNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := in
			in.containersReady = tc.containersReady
			st := desiredStatus(tc.pod, in)
			ready := findCondition(st.Conditions, corev1.PodReady)
			if ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.wantReason {
				t.Errorf("Ready = %+v, want status %s reason %q", ready, tc.wantReady, tc.wantReason)
			}
			if st.Phase != corev1.PodRunning || st.PodIP != "10.64.1.2" || st.PodIPs[0].IP != st.PodIP || st.HostIP != "10.1.0.1" {
				t.Errorf("status = %+v", st)
			}
			for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized} {
				if c := findCondition(st.Conditions, ct); c == nil || c.Status != corev1.ConditionTrue {
					t.Errorf("%s = %+v, want True", ct, c)
				}
			}
			if gate := tc.pod.Status.Conditions; len(gate) > 0 {
				if c := findCondition(st.Conditions, negReady); c == nil || *c != gate[0] {
					t.Errorf("gate condition %+v not preserved as %+v", c, gate[0])
				}
			}
			if len(st.ContainerStatuses) != len(tc.pod.Spec.Containers) || st.ContainerStatuses[0].Ready != tc.containersReady {
				t.Errorf("container statuses = %+v", st.ContainerStatuses)
			}
		})
	}
}

func TestDesiredStatusIsStable(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	pod := gatedPod(corev1.ConditionFalse)
	pod.Status = desiredStatus(pod, statusInput{hostIP: "10.1.0.1", podIP: "10.64.1.2", startTime: t0, containersReady: true, now: t0})

	// Nothing changed: the same status, so no write.
	t1 := metav1.NewTime(t0.Add(time.Minute))
	again := desiredStatus(pod, statusInput{hostIP: "10.1.0.1", podIP: "10.64.1.2", startTime: t1, containersReady: true, now: t1})
	if !equality.Semantic.DeepEqual(pod.Status, again) {
		t.Errorf("status changed without cause:\n%+v\n%+v", pod.Status, again)
	}

	// The gate flips: Ready flips with a new transition time; the others keep theirs.
	findCondition(pod.Status.Conditions, negReady).Status = corev1.ConditionTrue
	flipped := desiredStatus(pod, statusInput{hostIP: "10.1.0.1", podIP: "10.64.1.2", startTime: t1, containersReady: true, now: t1})
	ready := findCondition(flipped.Conditions, corev1.PodReady)
	if ready.Status != corev1.ConditionTrue || !ready.LastTransitionTime.Equal(&t1) {
		t.Errorf("Ready = %+v, want True since %v", ready, t1)
	}
	if cr := findCondition(flipped.Conditions, corev1.ContainersReady); !cr.LastTransitionTime.Equal(&t0) {
		t.Errorf("ContainersReady transition moved to %v", cr.LastTransitionTime)
	}
	if !flipped.StartTime.Equal(&t0) || !flipped.ContainerStatuses[0].State.Running.StartedAt.Equal(&t0) {
		t.Errorf("start times moved: %v / %v", flipped.StartTime, flipped.ContainerStatuses[0].State.Running.StartedAt)
	}
}
