//go:build e2e

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/objects"
	"github.com/neg-controller/neg-controller/test/podsim"
)

const (
	ns       = "e2e"
	negReady = corev1.PodConditionType("cloud.google.com/load-balancer-neg-ready")
)

// TestClusterEndToEnd proves the chain Deployment → ReplicaSet → Pods (bound and run by podsim)
// → EndpointSlices made by the real controller, then that Stop leaves nothing running.
func TestClusterEndToEnd(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(1)))
	ctx := klog.NewContext(context.Background(), logger)

	t0 := time.Now()
	binDir, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FindBinDir: %s in %v", binDir, time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	c, err := Start(ctx, Options{BinDir: binDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start: control plane ready in %v (pids %v)", time.Since(t0).Round(time.Millisecond), c.PIDs())
	stopped := false
	defer func() {
		if t.Failed() {
			for _, name := range []string{"kube-apiserver", "kube-controller-manager"} {
				t.Logf("--- tail of %s.log ---\n%s", name, tailFile(filepath.Join(c.LogDir, name+".log"), 25, 8<<10))
			}
		}
		if !stopped {
			_ = c.Stop()
		}
	}()

	client := kubernetes.NewForConfigOrDie(c.RESTConfig)
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() {
		simDone <- podsim.Run(simCtx, client, podsim.Config{
			Project:    "test-project",
			Nodes:      podsim.DefaultNodes([]string{"us-central1-a", "us-central1-b", "us-central1-c"}, 1),
			ReadyDelay: 200 * time.Millisecond,
			MaxGrace:   time.Second,
			DualStack:  true, // pods get IPv4 and IPv6 addresses; single-stack Services see only IPv4
		})
	}()
	defer func() {
		stopSim()
		if err := <-simDone; err != nil {
			t.Errorf("podsim.Run: %v", err)
		}
	}()

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("EndpointSlices", func(t *testing.T) { testEndpointSlices(ctx, t, client) })
	t.Run("ReadinessGate", func(t *testing.T) { testReadinessGate(ctx, t, client) })
	t.Run("ControllerIdentity", func(t *testing.T) { testControllerIdentity(ctx, t, c, client) })
	t.Run("DualStackEndpointSlices", func(t *testing.T) { testDualStackEndpointSlices(ctx, t, client) })

	stopSim()
	if err := <-simDone; err != nil {
		t.Errorf("podsim.Run: %v", err)
	}
	simDone <- nil // for the deferred receive

	pids := c.PIDs()
	t0 = time.Now()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(t0).Round(time.Millisecond))
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Stop: kill(0) = %v", name, pid, err)
		}
	}
	if _, err := os.Stat(c.WorkDir); !os.IsNotExist(err) {
		t.Errorf("work dir %s not removed: %v", c.WorkDir, err)
	}
}

func testEndpointSlices(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	dep := objects.Deployment(ns, "web", 3, 8080)
	svc := objects.Service(ns, "web", "web", 80)
	t0 := time.Now()
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	eps := waitEndpoints(ctx, t, client, "3 ready endpoints in 3 zones", func(eps []discoveryv1.Endpoint) bool {
		return len(eps) == 3 && countReady(eps) == 3 && len(zonesOf(eps)) == 3
	})
	t.Logf("3 ready endpoints %v after %v", describe(eps), time.Since(t0).Round(time.Millisecond))
	for _, ep := range eps {
		if ep.NodeName == nil || !strings.HasPrefix(*ep.NodeName, "node-us-central1-") || ep.Zone == nil ||
			!strings.HasSuffix(*ep.NodeName, *ep.Zone+"-0") || !strings.HasPrefix(ep.Addresses[0], "10.64.") {
			t.Errorf("endpoint %s", describe([]discoveryv1.Endpoint{ep}))
		}
	}

	// Delete one pod: it terminates (endpoint not ready, serving, terminating), goes away after
	// podsim's MaxGrace, and the ReplicaSet's replacement becomes ready in the same zone.
	victim := eps[0].TargetRef.Name
	t0 = time.Now()
	if err := client.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(ctx, t, client, "victim terminating", func(eps []discoveryv1.Endpoint) bool {
		for _, ep := range eps {
			if ep.TargetRef.Name == victim {
				c := ep.Conditions
				return c.Terminating != nil && *c.Terminating && c.Ready != nil && !*c.Ready
			}
		}
		return false
	})
	eps = waitEndpoints(ctx, t, client, "victim gone, replacement ready", func(eps []discoveryv1.Endpoint) bool {
		for _, ep := range eps {
			if ep.TargetRef.Name == victim {
				return false
			}
		}
		return len(eps) == 3 && countReady(eps) == 3 && len(zonesOf(eps)) == 3
	})
	t.Logf("replaced %s in %v: %v", victim, time.Since(t0).Round(time.Millisecond), describe(eps))
	if _, err := client.CoreV1().Pods(ns).Get(ctx, victim, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("deleted pod %s still exists: %v", victim, err)
	}
}

// testDualStackEndpointSlices: a RequireDualStack Service gets an IPv4 and an IPv6 ClusterIP,
// and the real EndpointSlice controller gives it an IPv4 slice and an IPv6 slice holding the
// pods' two addresses (podsim dual-stack nodes), whose IPv6 ones reach the same loopback
// address as the IPv4 ones.
func testDualStackEndpointSlices(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, objects.Deployment(ns, "ds", 2, 8080), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := objects.Service(ns, "ds", "ds", 80)
	policy := corev1.IPFamilyPolicyRequireDualStack
	svc.Spec.IPFamilyPolicy = &policy
	svc, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(svc.Spec.IPFamilies) != "[IPv4 IPv6]" || len(svc.Spec.ClusterIPs) != 2 {
		t.Errorf("Service families %v, cluster IPs %v; want IPv4 and IPv6", svc.Spec.IPFamilies, svc.Spec.ClusterIPs)
	}
	var want, got map[discoveryv1.AddressType][]string
	var pairs [][2]string // per pod: IPv4, IPv6
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: objects.AppLabel + "=ds"})
		if err != nil {
			return false, nil
		}
		want, pairs = map[discoveryv1.AddressType][]string{}, nil
		for _, p := range pods.Items {
			if len(p.Status.PodIPs) == 2 {
				pairs = append(pairs, [2]string{p.Status.PodIPs[0].IP, p.Status.PodIPs[1].IP})
			}
			if len(p.Status.PodIPs) != 2 || condStatus(&p, corev1.PodReady) != corev1.ConditionTrue {
				return false, nil
			}
			want[discoveryv1.AddressTypeIPv4] = append(want[discoveryv1.AddressTypeIPv4], p.Status.PodIPs[0].IP)
			want[discoveryv1.AddressTypeIPv6] = append(want[discoveryv1.AddressTypeIPv6], p.Status.PodIPs[1].IP)
		}
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=ds"})
		if err != nil {
			return false, nil
		}
		got = map[discoveryv1.AddressType][]string{}
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					got[sl.AddressType] = append(got[sl.AddressType], ep.Addresses...)
				}
			}
		}
		for _, m := range []map[discoveryv1.AddressType][]string{want, got} {
			for _, v := range m {
				sort.Strings(v)
			}
		}
		return len(pods.Items) == 2 && fmt.Sprint(got) == fmt.Sprint(want), nil
	})
	if err != nil {
		t.Fatalf("waiting for an IPv4 and an IPv6 slice with the pods' addresses: %v; slices %v, pods %v", err, got, want)
	}
	t.Logf("dual-stack slices: %v", got)
	for _, p := range pairs {
		lb4, _ := fakegce.LoopbackFor(p[0])
		if lb6, ok := fakegce.LoopbackFor(p[1]); !ok || lb6 != lb4 {
			t.Errorf("pod %s / %s: loopback %s and %s, want one", p[0], p[1], lb4, lb6)
		}
	}
}

// testReadinessGate: a gated pod is Running but not Ready until its gate condition is True.
func testReadinessGate(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gated"},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: negReady}},
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(ctx, t, client, "gated", "running, gate pending", func(p *corev1.Pod) bool {
		return p.Status.PodIP != "" && condStatus(p, corev1.ContainersReady) == corev1.ConditionTrue &&
			condStatus(p, corev1.PodReady) == corev1.ConditionFalse
	})
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: negReady, Status: corev1.ConditionTrue, Reason: "LoadBalancerNegReady", LastTransitionTime: metav1.Now(),
	})
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, client, "gated", "ready", func(p *corev1.Pod) bool {
		return condStatus(p, corev1.PodReady) == corev1.ConditionTrue && condStatus(p, negReady) == corev1.ConditionTrue
	})
}

// testControllerIdentity: the neg-controller identity can do nothing until RBAC grants it.
func testControllerIdentity(ctx context.Context, t *testing.T, c *Cluster, admin kubernetes.Interface) {
	ctrl := kubernetes.NewForConfigOrDie(c.ControllerRESTConfig)
	imp := kubernetes.NewForConfigOrDie(c.ImpersonatingConfig(controllerUser))
	for name, cl := range map[string]kubernetes.Interface{"token": ctrl, "impersonated": imp} {
		if _, err := cl.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s: list pods without RBAC = %v, want Forbidden", name, err)
		}
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: controllerUser}},
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := ctrl.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Errorf("neg-controller cannot list pods after the ClusterRoleBinding: %v", err)
	}
}

func waitEndpoints(ctx context.Context, t *testing.T, client kubernetes.Interface, what string, cond func([]discoveryv1.Endpoint) bool) []discoveryv1.Endpoint {
	t.Helper()
	var eps []discoveryv1.Endpoint
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, nil
		}
		eps = nil
		for _, s := range list.Items {
			if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" || len(s.Ports) != 1 ||
				s.Ports[0].Port == nil || *s.Ports[0].Port != 8080 || s.Ports[0].Name == nil || *s.Ports[0].Name != "http" {
				continue
			}
			eps = append(eps, s.Endpoints...)
		}
		sort.Slice(eps, func(i, j int) bool { return eps[i].Addresses[0] < eps[j].Addresses[0] })
		return cond(eps), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; endpoints: %v", what, err, describe(eps))
	}
	return eps
}

func waitPod(ctx context.Context, t *testing.T, client kubernetes.Interface, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pod = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("waiting for pod %s %s: %v; status: %+v", name, what, err, pod)
	}
	return pod
}

func condStatus(p *corev1.Pod, ct corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == ct {
			return c.Status
		}
	}
	return ""
}

func countReady(eps []discoveryv1.Endpoint) int {
	n := 0
	for _, ep := range eps {
		if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
			n++
		}
	}
	return n
}

func zonesOf(eps []discoveryv1.Endpoint) map[string]bool {
	z := map[string]bool{}
	for _, ep := range eps {
		if ep.Zone != nil {
			z[*ep.Zone] = true
		}
	}
	return z
}

func describe(eps []discoveryv1.Endpoint) string {
	var parts []string
	for _, ep := range eps {
		s := fmt.Sprint(ep.Addresses)
		if ep.TargetRef != nil {
			s += " pod=" + ep.TargetRef.Name
		}
		if ep.NodeName != nil {
			s += " node=" + *ep.NodeName
		}
		if ep.Zone != nil {
			s += " zone=" + *ep.Zone
		}
		c := ep.Conditions
		s += fmt.Sprintf(" ready=%v serving=%v terminating=%v", deref(c.Ready), deref(c.Serving), deref(c.Terminating))
		parts = append(parts, "{"+s+"}")
	}
	return strings.Join(parts, " ")
}

func deref(b *bool) bool { return b != nil && *b }
