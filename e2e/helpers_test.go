//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/test/objects"
)

const (
	attachMethod = "compute.networkEndpointGroups.attachNetworkEndpoints"
	detachMethod = "compute.networkEndpointGroups.detachNetworkEndpoints"
	insertMethod = "compute.networkEndpointGroups.insert"
	deleteMethod = "compute.networkEndpointGroups.delete"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("e2e-%s-%04d", strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), rand.IntN(10000))
	if len(name) > 60 {
		name = name[:55] + fmt.Sprintf("%04d", rand.IntN(10000))
	}
	_, err := env.Kube.CoreV1().Namespaces().Create(ctxFor(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// createDeployment creates a Deployment of `replicas` pods labelled app=name whose container
// serves on containerPort (named "http"): objects.Deployment.
func createDeployment(t *testing.T, ns, name string, replicas int32, containerPort int32) {
	t.Helper()
	d := objects.Deployment(ns, name, replicas, containerPort)
	if _, err := env.Kube.AppsV1().Deployments(ns).Create(ctxFor(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
}

func scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := ctxFor(t)
	s, err := env.Kube.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	s.Spec.Replicas = replicas
	if _, err := env.Kube.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale: %v", err)
	}
}

// createService creates a Service selecting app=name with port → targetPort "http" and the
// given cloud.google.com/neg annotation (none if empty).
func createService(t *testing.T, ns, name, selector, negAnnotation string, port int32) *corev1.Service {
	t.Helper()
	svc := objects.Service(ns, name, selector, port)
	if negAnnotation != "" {
		svc.Annotations = map[string]string{annotation.NEGKey: negAnnotation}
	}
	out, err := env.Kube.CoreV1().Services(ns).Create(ctxFor(t), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service: %v", err)
	}
	return out
}

func setNEGAnnotation(t *testing.T, ns, name, value string) {
	t.Helper()
	ctx := ctxFor(t)
	svc, err := env.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	if value == "" {
		delete(svc.Annotations, annotation.NEGKey)
	} else {
		svc.Annotations[annotation.NEGKey] = value
	}
	if _, err := env.Kube.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 250 ms until it holds or timeout passes; on timeout the test fails
// with cond's last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	var detail string
	for {
		var ok bool
		ok, detail = cond()
		if ok {
			t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if c := env.Controller(); c != nil && c.Exited() {
			t.Fatalf("%s: neg-controller exited:\n%s", what, c.LogTail(40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podEndpoints returns the endpoints the NEGs must hold for pods labelled app=selector: every
// non-terminating pod with an IP, on targetPort, on the instance of its node.
func podEndpoints(t *testing.T, ns, selector string, targetPort int64) (neg.EndpointSet, error) {
	pods, err := env.Kube.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=" + selector})
	if err != nil {
		return nil, err
	}
	out := neg.EndpointSet{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Spec.NodeName == "" {
			continue
		}
		out.Insert(neg.Endpoint{Instance: p.Spec.NodeName, IP: p.Status.PodIP, Port: targetPort})
	}
	return out, nil
}

// negStatus reads and parses the Service's neg-status annotation.
func negStatus(t *testing.T, ns, name string) (annotation.Status, bool) {
	svc, err := env.Kube.CoreV1().Services(ns).Get(ctxFor(t), name, metav1.GetOptions{})
	if err != nil {
		return annotation.Status{}, false
	}
	v, ok := svc.Annotations[annotation.NEGStatusKey]
	if !ok {
		return annotation.Status{}, false
	}
	st, err := annotation.ParseStatus(v)
	return st, err == nil
}

// gceNEGs returns, per zone, the endpoints of every NEG called name in fakegce.
func gceNEGs(name string) map[string][]neg.Endpoint {
	out := map[string][]neg.Endpoint{}
	for _, z := range env.GCE.State().Zones {
		if eps, ok := env.GCE.NEGEndpoints(z, name); ok {
			out[z] = eps
		}
	}
	return out
}

// expectSynced waits until Service ns/svc has a neg-status naming a NEG for port, that NEG
// exists in every zone the status lists (and only there), and the NEGs together hold exactly
// the endpoints of the pods labelled app=selector on targetPort, of which there must be
// exactly pods (so a check right after scaling waits for the new pods). It returns the NEG name.
func expectSynced(t *testing.T, ns, svc, selector string, port int32, targetPort int64, pods int, timeout time.Duration) string {
	t.Helper()
	var name string
	waitFor(t, timeout, fmt.Sprintf("NEGs of %s/%s port %d in sync", ns, svc, port), func() (bool, string) {
		st, ok := negStatus(t, ns, svc)
		if !ok {
			return false, "no neg-status annotation"
		}
		name = st.NetworkEndpointGroups[fmt.Sprint(port)]
		if name == "" {
			return false, fmt.Sprintf("neg-status %s has no NEG for port %d", st, port)
		}
		want, err := podEndpoints(t, ns, selector, targetPort)
		if err != nil {
			return false, err.Error()
		}
		if want.Len() != pods {
			return false, fmt.Sprintf("%d pods with IPs, want %d", want.Len(), pods)
		}
		negs := gceNEGs(name)
		var zones []string
		got := neg.EndpointSet{}
		for z, eps := range negs {
			zones = append(zones, z)
			got.Insert(eps...)
		}
		sort.Strings(zones)
		if strings.Join(zones, ",") != strings.Join(st.Zones, ",") {
			return false, fmt.Sprintf("NEG %s exists in %v, neg-status says %v", name, zones, st.Zones)
		}
		if !got.Equal(want) {
			return false, fmt.Sprintf("NEG %s holds %d endpoints, want %d (missing %d, extra %d)", name, got.Len(), want.Len(), diffCount(want, got), diffCount(got, want))
		}
		return true, ""
	})
	return name
}

func diffCount(a, b neg.EndpointSet) int {
	n := 0
	for e := range a {
		if !b.Has(e) {
			n++
		}
	}
	return n
}

// expectNoNEG waits until no zone has a NEG called name.
func expectNoNEG(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "NEG "+name+" deleted", func() (bool, string) {
		negs := gceNEGs(name)
		return len(negs) == 0, fmt.Sprintf("still in %d zone(s)", len(negs))
	})
}

// expectEvent waits for an event with reason on the named object of kind Service.
func expectEvent(t *testing.T, ns, svc, reason string, timeout time.Duration) corev1.Event {
	t.Helper()
	var found corev1.Event
	waitFor(t, timeout, "event "+reason+" on "+ns+"/"+svc, func() (bool, string) {
		evs, err := env.Kube.CoreV1().Events(ns).List(ctxFor(t), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == svc && e.Reason == reason {
				found = e
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, fmt.Sprintf("events seen: %v", seen)
	})
	return found
}

// failedEndpointCalls counts attach/detach requests since the mark that GCE rejected with 400
// (in strict mode: a duplicate attach, a detach of an absent endpoint, or a bad endpoint).
func failedEndpointCalls(since time.Time) []fakegce.RequestRecord {
	var out []fakegce.RequestRecord
	for _, r := range env.GCE.Requests() {
		if r.Time.Before(since) || (r.Method != attachMethod && r.Method != detachMethod) {
			continue
		}
		if r.Status == 400 {
			out = append(out, r)
		}
	}
	return out
}

// countCalls counts requests of method since the mark.
func countCalls(method string, since time.Time) int {
	n := 0
	for _, r := range env.GCE.Requests() {
		if !r.Time.Before(since) && r.Method == method {
			n++
		}
	}
	return n
}

func restartController(t *testing.T, extra ...string) {
	t.Helper()
	if c := env.Controller(); c != nil {
		if err := c.Stop(15 * time.Second); err != nil {
			t.Logf("stopping controller: %v", err)
		}
	}
	if _, err := env.StartController(controllerKubeconfig, append(append([]string(nil), controllerFlags...), extra...)...); err != nil {
		t.Fatal(err)
	}
}
