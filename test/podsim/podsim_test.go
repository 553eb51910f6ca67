package podsim

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

// newFakeClient is a fake clientset whose pods/binding subresource sets spec.nodeName and whose
// pods/status subresource writes only the status (keeping, for example, a deletionTimestamp set
// meanwhile), as the apiserver does.
func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	c.PrependReactor("update", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "status" {
			return false, nil, nil
		}
		upd := action.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
		obj, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), action.GetNamespace(), upd.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Status = *upd.Status.DeepCopy()
		return true, pod, c.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), pod, pod.Namespace)
	})
	c.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		obj, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), action.GetNamespace(), b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Spec.NodeName = b.Target.Name
		return true, b, c.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), pod, pod.Namespace)
	})
	return c
}

// eventually polls cond every 10 ms until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startSim(t *testing.T, client *fake.Clientset, cfg Config) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, client, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func getPod(t *testing.T, c *fake.Clientset, name string) *corev1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	if c := findCondition(p.Status.Conditions, corev1.PodReady); c != nil {
		return c.Status
	}
	return ""
}

func TestRunRegistersNodesAndRunsPods(t *testing.T) {
	ctx := context.Background()
	client := newFakeClient()
	nodes := DefaultNodes([]string{"us-central1-a", "us-central1-b", "us-central1-c"}, 1)
	startSim(t, client, Config{Project: "proj", Nodes: nodes, ReadyDelay: 50 * time.Millisecond, MaxGrace: -1})

	// A node is registered in two writes (the object, then its status), so
	// wait for all three to be Ready before reading one.
	eventually(t, "nodes", func() (bool, string) {
		list, _ := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ready := 0
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				ready++
			}
		}
		return ready == 3, fmt.Sprintf("%d of %d nodes ready", ready, len(list.Items))
	})
	n, _ := client.CoreV1().Nodes().Get(ctx, "node-us-central1-b-0", metav1.GetOptions{})
	if n.Spec.ProviderID != "gce://proj/us-central1-b/node-us-central1-b-0" || n.Spec.PodCIDR != "10.64.2.0/24" ||
		n.Labels[corev1.LabelTopologyZone] != "us-central1-b" || !nodeReady(n) || internalIP(n) != "10.1.0.2" {
		t.Errorf("node = %+v", n)
	}

	for _, name := range []string{"p0", "p1", "p2"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		if _, err := client.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	zones := map[string]bool{}
	ips := map[string]bool{}
	for _, name := range []string{"p0", "p1", "p2"} {
		eventually(t, name+" ready", func() (bool, string) {
			p := getPod(t, client, name)
			return p != nil && podReady(p) == corev1.ConditionTrue, ""
		})
		p := getPod(t, client, name)
		node, _ := client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		zones[node.Labels[corev1.LabelTopologyZone]] = true
		ip := netip.MustParseAddr(p.Status.PodIP)
		if !netip.MustParsePrefix(node.Spec.PodCIDR).Contains(ip) || ips[ip.String()] || p.Status.HostIP != internalIP(node) {
			t.Errorf("pod %s on %s: podIP %s hostIP %s", name, node.Name, ip, p.Status.HostIP)
		}
		ips[ip.String()] = true
	}
	if len(zones) != 3 {
		t.Errorf("pods spread over zones %v, want all 3", zones)
	}
}

func TestRunHonoursReadinessGates(t *testing.T) {
	ctx := context.Background()
	client := newFakeClient()
	startSim(t, client, Config{Project: "proj", Nodes: DefaultNodes([]string{"z-a"}, 1)})
	pod := gatedPod("")
	pod.Namespace = "ns"
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod running, not ready", func() (bool, string) {
		p := getPod(t, client, "p")
		if p == nil {
			return false, "no pod"
		}
		c := findCondition(p.Status.Conditions, corev1.ContainersReady)
		return c != nil && c.Status == corev1.ConditionTrue && podReady(p) == corev1.ConditionFalse, string(podReady(p))
	})

	// The NEG controller sets its gate: podsim flips Ready and keeps the gate condition.
	p := getPod(t, client, "p")
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: negReady, Status: corev1.ConditionTrue, Reason: "LoadBalancerNegReady"})
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod ready", func() (bool, string) {
		p := getPod(t, client, "p")
		return podReady(p) == corev1.ConditionTrue, string(podReady(p))
	})
	if c := findCondition(getPod(t, client, "p").Status.Conditions, negReady); c == nil || c.Reason != "LoadBalancerNegReady" {
		t.Errorf("gate condition = %+v", c)
	}
}

func TestRunFinishesDeletionAfterGrace(t *testing.T) {
	grace := int64(60)
	now := metav1.Now()
	terminating := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old", UID: "u-old",
			DeletionTimestamp: &now, DeletionGracePeriodSeconds: &grace, Finalizers: nil},
		Spec: corev1.PodSpec{NodeName: "node-z-a-0", Containers: []corev1.Container{{Name: "app"}}},
	}
	client := newFakeClient(terminating)
	start := time.Now()
	startSim(t, client, Config{Project: "proj", Nodes: DefaultNodes([]string{"z-a"}, 1), MaxGrace: 300 * time.Millisecond})
	eventually(t, "terminating pod deleted", func() (bool, string) {
		return getPod(t, client, "old") == nil, ""
	})
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("deleted after %v, before MaxGrace", d)
	}
	var deletes []k8stesting.DeleteActionImpl
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && a.GetResource().Resource == "pods" {
			deletes = append(deletes, d)
		}
	}
	if len(deletes) != 1 || deletes[0].DeleteOptions.GracePeriodSeconds == nil || *deletes[0].DeleteOptions.GracePeriodSeconds != 0 {
		t.Errorf("pod deletes = %+v, want one with grace period 0", deletes)
	}
}
