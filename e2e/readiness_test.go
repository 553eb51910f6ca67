//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/readiness"
)

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startGateWebhook restarts the suite's controller with the webhook on a known loopback port
// (certificate for 127.0.0.1, readiness timeout given), registers a MutatingWebhookConfiguration
// with that URL for namespaces labelled for injection, and waits until the controller has
// patched its caBundle. Cleanup removes the configuration and restores the usual controller.
func startGateWebhook(t *testing.T, timeout time.Duration, extra ...string) string {
	t.Helper()
	ctx := ctxFor(t)
	port := freePort(t)
	mwc := webhookConfiguration(t, port)
	createWebhookConfiguration(t, mwc)
	startWebhookController(t, port, timeout, extra...)
	waitFor(t, 60*time.Second, "caBundle patched into "+mwc.Name, func() (bool, string) {
		got, err := env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(got.Webhooks[0].ClientConfig.CABundle) > 0, "no caBundle"
	})
	return mwc.Name
}

// webhookConfiguration is the manifests' MutatingWebhookConfiguration as the base renders it
// (their name, so that the controller runs with exactly the manifests' RBAC;
// InstallControllerManifests leaves the manifests' own configuration out), with its
// namespaceSelector (labelled namespaces only, never kube-system or neg-controller), calling
// the controller at 127.0.0.1:port instead of through the Service.
func webhookConfiguration(t *testing.T, port int) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	mwc := manifestWebhookConfiguration(t)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, readiness.MutatePath)
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	return mwc
}

// createWebhookConfiguration creates mwc; cleanup deletes it and restores the usual controller.
func createWebhookConfiguration(t *testing.T, mwc *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	if _, err := env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctxFor(t), mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})
		restartController(t)
	})
}

// startWebhookController restarts the suite's controller serving the webhook on 127.0.0.1:port.
func startWebhookController(t *testing.T, port int, timeout time.Duration, extra ...string) {
	t.Helper()
	flags := append([]string{
		fmt.Sprintf("--webhook-bind-address=127.0.0.1:%d", port), "--webhook-host=127.0.0.1",
		"--webhook-configuration-name=neg-controller", "--controller-namespace=neg-controller",
		"--readiness-gate-timeout=" + timeout.String(),
	}, extra...)
	restartController(t, flags...)
}

// labelledNamespace creates a test namespace labelled for gate injection.
func labelledNamespace(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	n, err := env.Kube.CoreV1().Namespaces().Get(ctxFor(t), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[readiness.InjectionLabel] = readiness.InjectionEnabled
	if _, err := env.Kube.CoreV1().Namespaces().Update(ctxFor(t), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// podsWithReason reports whether exactly want pods labelled app=selector exist, each with the
// gate and a condition of that reason, and explains what is missing otherwise.
func podsWithReason(t *testing.T, ns, selector string, want int, reason string) (bool, string) {
	pods, err := env.Kube.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=" + selector})
	if err != nil {
		return false, err.Error()
	}
	n := 0
	var detail []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		gated := slices.ContainsFunc(p.Spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == readiness.GateType })
		var c *corev1.PodCondition
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == readiness.GateType {
				c = &p.Status.Conditions[i]
			}
		}
		switch {
		case !gated:
			detail = append(detail, p.Name+": no readiness gate")
		case c == nil:
			detail = append(detail, p.Name+": no condition")
		case c.Reason != reason:
			detail = append(detail, fmt.Sprintf("%s: %s %s %q", p.Name, c.Status, c.Reason, c.Message))
		default:
			n++
		}
	}
	return n == want && len(detail) == 0, fmt.Sprintf("%d/%d pods: %s", n, want, strings.Join(detail, "; "))
}

// podReady counts the pods labelled app=selector whose Ready condition is True.
func podReady(t *testing.T, ns, selector string) int {
	pods, err := env.Kube.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=" + selector})
	if err != nil {
		return -1
	}
	n := 0
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// wireHealthCheckedBackend creates an HTTP health check and a backend service holding the NEG
// of every zone in zones.
func wireHealthCheckedBackend(t *testing.T, name, negName string, zones []string) {
	t.Helper()
	ctx := ctxFor(t)
	hc := &compute.HealthCheck{Name: name + "-hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1, HealthyThreshold: 1,
		UnhealthyThreshold: 1, HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/"}}
	if _, err := env.Compute.HealthChecks.Insert(env.Project, hc).Context(ctx).Do(); err != nil {
		t.Fatalf("creating health check: %v", err)
	}
	waitFor(t, 30*time.Second, "health check "+hc.Name, func() (bool, string) {
		_, err := env.Compute.HealthChecks.Get(env.Project, hc.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	})
	var bes []*compute.Backend
	for _, z := range zones {
		bes = append(bes, rateBackend(z, negName, 100))
	}
	bs := &compute.BackendService{Name: name, Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: bes,
		HealthChecks: []string{"https://www.googleapis.com/compute/v1/projects/" + env.Project + "/global/healthChecks/" + name + "-hc"}}
	if _, err := env.Compute.BackendServices.Insert(env.Project, bs).Context(ctx).Do(); err != nil {
		t.Fatalf("creating backend service: %v", err)
	}
}

// TestReadinessGate: the real kube-apiserver calls the controller's webhook (certificate and
// caBundle made by the controller), which adds the gate to the pods of a NEG Service in a
// labelled namespace and not elsewhere; the pods wait (condition False, not Ready) while their
// NEG is in no health-checked backend service, become Ready once it is and the endpoints are
// HEALTHY; pods of a Service that stops wanting NEGs are failed open; pods that never become
// healthy are failed open at the timeout.
func TestReadinessGate(t *testing.T) {
	const timeout = 40 * time.Second
	startGateWebhook(t, timeout)
	ns := labelledNamespace(t)
	plain := newNamespace(t)

	createService(t, ns, "web", "web", standalone80, 80)
	createService(t, ns, "slow", "slow", standalone80, 80)
	createService(t, ns, "leaving", "leaving", standalone80, 80)
	createService(t, plain, "web", "web", standalone80, 80)
	negName := waitNEGName(t, env.Kube, ns, "web")
	start := time.Now()
	for _, app := range []string{"web", "slow", "leaving"} {
		createDeployment(t, ns, app, 3, 8080)
	}
	createDeployment(t, plain, "web", 2, 8080)

	for _, app := range []string{"web", "slow", "leaving"} {
		waitFor(t, 60*time.Second, app+" pods gated and waiting", func() (bool, string) {
			return podsWithReason(t, ns, app, 3, readiness.ReasonNotReady)
		})
	}
	if n := podReady(t, ns, "web"); n != 0 {
		t.Errorf("%d pods Ready before their NEG is health-checked", n)
	}
	// The unlabelled namespace's pods have no gate and are Ready as usual.
	waitFor(t, 60*time.Second, "pods of an unlabelled namespace Ready without the gate", func() (bool, string) {
		pods, _ := env.Kube.CoreV1().Pods(plain).List(ctxFor(t), metav1.ListOptions{})
		for _, p := range pods.Items {
			if len(p.Spec.ReadinessGates) > 0 {
				return false, p.Name + " has a readiness gate"
			}
		}
		return podReady(t, plain, "web") == 2, fmt.Sprintf("%d/2 Ready", podReady(t, plain, "web"))
	})

	// Fail open when the Service stops wanting NEGs.
	setNEGAnnotation(t, ns, "leaving", "")
	waitFor(t, 30*time.Second, "pods of a Service without NEGs any more failed open", func() (bool, string) {
		return podsWithReason(t, ns, "leaving", 3, readiness.ReasonReady)
	})

	// Health-checked backend service: HEALTHY endpoints open the gate.
	waitFor(t, 60*time.Second, "web's endpoints attached", func() (bool, string) {
		want, _ := podEndpoints(t, ns, "web", 8080)
		got := 0
		for _, eps := range gceNEGs(negName) {
			got += len(eps)
		}
		return got == want.Len() && got == 3, fmt.Sprintf("%d attached, want %d", got, want.Len())
	})
	st, _ := negStatus(t, ns, "web")
	wireHealthCheckedBackend(t, "readiness-"+ns, negName, st.Zones)
	waitFor(t, 30*time.Second, "web pods LoadBalancerNegReady", func() (bool, string) {
		return podsWithReason(t, ns, "web", 3, readiness.ReasonReady)
	})
	waitFor(t, 30*time.Second, "web pods Ready", func() (bool, string) {
		n := podReady(t, ns, "web")
		return n == 3, fmt.Sprintf("%d/3 Ready", n)
	})
	evs, _ := env.Kube.CoreV1().Events(ns).List(ctxFor(t), metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,reason=" + readiness.ReasonReady})
	if len(evs.Items) == 0 || evs.Items[0].Source.Component != readiness.EventSource {
		t.Errorf("no %s event from %s on the pods: %+v", readiness.ReasonReady, readiness.EventSource, evs.Items)
	}

	// "slow" never gets a backend service: failed open at creation + timeout, not before.
	if time.Since(start) > timeout-5*time.Second {
		t.Logf("the test took %s; the timeout check is not meaningful", time.Since(start))
	} else if ok, detail := podsWithReason(t, ns, "slow", 3, readiness.ReasonNotReady); !ok {
		t.Errorf("slow pods before the timeout: %s", detail)
	}
	waitFor(t, timeout+30*time.Second, "slow pods failed open at the timeout", func() (bool, string) {
		return podsWithReason(t, ns, "slow", 3, readiness.ReasonTimeout)
	})
	pods, _ := env.Kube.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=slow"})
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == readiness.GateType {
				if d := c.LastTransitionTime.Sub(p.CreationTimestamp.Time); d < timeout || d > timeout+10*time.Second {
					t.Errorf("pod %s failed open %s after its creation, want %s (+ at most 10 s)", p.Name, d, timeout)
				}
			}
		}
	}
}
