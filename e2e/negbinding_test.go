//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negbinding"
	"github.com/neg-controller/neg-controller/pkg/readiness"
)

// negBindingClient reads and writes NetworkEndpointGroupBindings as an admin (a user allowed to
// create bindings).
func negBindingClient(t *testing.T) *negbinding.Client {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return negbinding.NewClient(dyn, env.Kube.Discovery())
}

// nodeZones returns the zone of every node.
func nodeZones(t *testing.T) map[string]string {
	t.Helper()
	nodes, err := env.Kube.CoreV1().Nodes().List(ctxFor(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = n.Labels["topology.kubernetes.io/zone"]
	}
	return out
}

// expectBound waits until the NEG name holds, in each of zones, exactly the endpoints of the pods
// labelled app=selector on nodes of that zone (on targetPort), of which there must be pods in all
// (so a check right after scaling waits for the new pods), and the binding says
// BackendRefAttached True.
func expectBound(t *testing.T, c *negbinding.Client, ns, binding, selector, name string, zones []string, pods int) {
	t.Helper()
	waitFor(t, 90*time.Second, fmt.Sprintf("NEG %s bound to %s/%s in %v", name, ns, selector, zones), func() (bool, string) {
		all, err := podEndpoints(t, ns, selector, 8080)
		if err != nil {
			return false, err.Error()
		}
		if all.Len() != pods {
			return false, fmt.Sprintf("%d pods with IPs, want %d", all.Len(), pods)
		}
		nz := nodeZones(t)
		for _, z := range zones {
			want := neg.EndpointSet{}
			for e := range all {
				if nz[e.Instance] == z {
					want.Insert(e)
				}
			}
			got, ok := env.GCE.NEGEndpoints(z, name)
			if !ok {
				return false, fmt.Sprintf("NEG %s does not exist in %s", name, z)
			}
			if gs := neg.NewEndpointSet(got...); !gs.Equal(want) {
				return false, fmt.Sprintf("NEG %s/%s holds %d endpoints, want %d (missing %d, extra %d)", z, name, gs.Len(),
					want.Len(), diffCount(want, gs), diffCount(gs, want))
			}
		}
		b, err := c.Get(ctxFor(t), ns, binding)
		if err != nil {
			return false, err.Error()
		}
		cond := b.Status.FindCondition(negbinding.ConditionBackendRefAttached)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			return false, fmt.Sprintf("condition %s = %+v", negbinding.ConditionBackendRefAttached, cond)
		}
		return true, ""
	})
}

// bindingQuiet is the barrier before asserting that something did not happen to NEG name: the
// controller's binding queue is empty with no sync running (its workqueue metrics), and fakegce
// received no endpoint call or listing on the NEG, for ten consecutive checks 250 ms apart —
// longer than the pacing of a NEG's calls (--neg-call-interval 1s, --neg-quiet-period 250ms).
func bindingQuiet(t *testing.T, name string) {
	t.Helper()
	base, err := env.Controller().MetricsURL(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	calls := func() int {
		n := 0
		for _, r := range env.GCE.Requests() {
			if strings.Contains(r.Path, "/networkEndpointGroups/"+name+"/") {
				n++
			}
		}
		return n
	}
	stable, last := 0, -1
	waitFor(t, 2*time.Minute, "binding controller quiet on NEG "+name, func() (bool, string) {
		depth, unfinished, err := queueGauges(base, negbinding.QueueName)
		n := calls()
		if err != nil || depth != 0 || unfinished != 0 || n != last {
			stable, last = 0, n
			return false, fmt.Sprintf("depth %v, unfinished %v, calls on the NEG %d (%v)", depth, unfinished, n, err)
		}
		stable++
		return stable >= 10, fmt.Sprintf("quiet for %d checks", stable)
	})
}

// queueGauges scrapes workqueue_depth and workqueue_unfinished_work_seconds of queue name.
func queueGauges(base, name string) (depth, unfinished float64, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	found := 0
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		for metric, p := range map[string]*float64{"workqueue_depth": &depth, "workqueue_unfinished_work_seconds": &unfinished} {
			if strings.HasPrefix(line, metric+`{name="`+name+`"} `) {
				if _, err := fmt.Sscan(strings.TrimPrefix(line, metric+`{name="`+name+`"} `), p); err != nil {
					return 0, 0, err
				}
				found++
			}
		}
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("queue %s: %d of 2 gauges in /metrics", name, found)
	}
	return depth, unfinished, nil
}

// TestNEGBinding: with the negbinding component and --enable-negbinding, a binding fills NEGs
// made by hand (as Terraform would) in the zones it lists with the Service port's pods there,
// follows scaling, shows in `kubectl get negbinding`; a second binding on the same NEG is
// refused; deleting the binding detaches what it added and leaves the NEGs, empty; nothing is
// created or deleted in GCE.
func TestNEGBinding(t *testing.T) {
	ctx := ctxFor(t)
	if err := env.InstallControllerManifests(ctx, "neg-controller", "negbinding"); err != nil {
		t.Fatal(err)
	}
	restartController(t, "--enable-negbinding")
	t.Cleanup(func() { restartController(t) })
	ns := newNamespace(t)
	name := "e2e-bound-" + ns[len(ns)-4:]
	zones := initialZones[:2] // the third zone has nodes and pods, but no NEG
	ids := map[string]uint64{}
	negID := func(z string) uint64 { return handMadeNEGID(t, z, name) }
	for _, z := range zones {
		ids[z] = createNEGByHand(t, z, name)
	}
	start := time.Now()
	createDeployment(t, ns, "web", 6, 8080)
	createService(t, ns, "web", "web", "", 80)
	c := negBindingClient(t)
	b := &negbinding.NetworkEndpointGroupBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: negbinding.Spec{BackendRef: &negbinding.BackendRef{Kind: negbinding.ServiceKind, Name: "web", Port: 80},
			NetworkEndpointGroups: []negbinding.SpecNEGRef{{Name: name, Zones: zones}}}}
	if _, err := c.Create(ctx, b); err != nil {
		t.Fatalf("creating the binding: %v", err)
	}
	expectBound(t, c, ns, "web", "web", name, zones, 6)

	got, err := c.Get(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got.Finalizers, negbinding.Finalizer) || len(got.Status.NetworkEndpointGroups) != len(zones) ||
		got.Status.LastSyncTime.IsZero() {
		t.Errorf("binding: finalizers %v, status %+v", got.Finalizers, got.Status)
	}
	out, err := env.Kubectl(ctx, nil, "get", "negbinding", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 ||
		strings.Join(strings.Fields(lines[0]), " ") != "NAME SERVICE PORT NEGS ATTACHED AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "web web 80 "+name+" True ") {
		t.Errorf("kubectl get negbinding:\n%s", out)
	}
	// The immutable backendRef.
	got.Spec.BackendRef.Port = 443
	if _, err := c.Update(ctx, got); err == nil || !strings.Contains(err.Error(), "BackendRef can't be changed") {
		t.Errorf("changing backendRef: %v, want the CEL rule's refusal", err)
	}

	scale(t, ns, "web", 9)
	expectBound(t, c, ns, "web", "web", name, zones, 9)
	scale(t, ns, "web", 3)
	expectBound(t, c, ns, "web", "web", name, zones, 3)

	// A second binding on the same NEG is refused and changes nothing.
	createService(t, ns, "other", "web", "", 81)
	intruder := &negbinding.NetworkEndpointGroupBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intruder"},
		Spec: negbinding.Spec{BackendRef: &negbinding.BackendRef{Kind: negbinding.ServiceKind, Name: "other", Port: 81},
			NetworkEndpointGroups: []negbinding.SpecNEGRef{{Name: name, Zones: zones[:1]}}}}
	if _, err := c.Create(ctx, intruder); err != nil {
		t.Fatalf("creating the second binding: %v", err)
	}
	waitFor(t, time.Minute, "second binding refused", func() (bool, string) {
		ib, err := c.Get(ctx, ns, "intruder")
		if err != nil {
			return false, err.Error()
		}
		cond := ib.Status.FindCondition(negbinding.ConditionNEGsAccepted)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == negbinding.ReasonNEGConflict &&
			strings.Contains(cond.Message, ns+"/web"), fmt.Sprintf("condition %+v", cond)
	})
	expectEvent(t, ns, "intruder", negbinding.ReasonNEGConflict, time.Minute)
	bindingQuiet(t, name)
	expectBound(t, c, ns, "web", "web", name, zones, 3)
	deleteBinding(t, c, ns, "intruder")
	expectBound(t, c, ns, "web", "web", name, zones, 3)

	// Deleting the binding empties the NEGs and leaves them.
	deleteBinding(t, c, ns, "web")
	for _, z := range zones {
		waitFor(t, time.Minute, "NEG "+name+" empty in "+z, func() (bool, string) {
			eps, ok := env.GCE.NEGEndpoints(z, name)
			return ok && len(eps) == 0, fmt.Sprintf("exists %v, %d endpoints", ok, len(eps))
		})
	}
	bindingQuiet(t, name)
	for _, z := range zones {
		if eps, ok := env.GCE.NEGEndpoints(z, name); !ok || len(eps) != 0 {
			t.Errorf("NEG %s/%s after the binding's deletion: exists %v, %d endpoints", z, name, ok, len(eps))
		} else if id := negID(z); id != ids[z] {
			t.Errorf("NEG %s/%s was re-created (id %d, was %d)", z, name, id, ids[z])
		}
	}
	if _, ok := env.GCE.NEGEndpoints(initialZones[2], name); ok {
		t.Errorf("a NEG %s was created in %s", name, initialZones[2])
	}
	for _, r := range env.GCE.Requests() {
		if !r.Time.Before(start) && r.Method == deleteMethod && strings.HasSuffix(r.Path, "/"+name) {
			t.Errorf("the bound NEG was deleted: %s", r.Path)
		}
	}
	if failed := failedEndpointCalls(start); len(failed) > 0 {
		t.Errorf("%d attach/detach calls failed (duplicate or absent endpoints): %v", len(failed), failed)
	}
}

// deleteBinding deletes a binding and waits until it is gone (its finalizer removed).
func deleteBinding(t *testing.T, c *negbinding.Client, ns, name string) {
	t.Helper()
	if err := c.Delete(ctxFor(t), ns, name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "binding "+ns+"/"+name+" gone", func() (bool, string) {
		_, err := c.Get(context.Background(), ns, name)
		return err != nil && strings.Contains(err.Error(), "not found"), fmt.Sprint(err)
	})
}

// createNEGByHand creates an empty GCE_VM_IP_PORT NEG on the default network, as Terraform
// would (a description that is not ours), waits until it exists and returns its id.
func createNEGByHand(t *testing.T, zone, name string) uint64 {
	t.Helper()
	n := &compute.NetworkEndpointGroup{Name: name, NetworkEndpointType: "GCE_VM_IP_PORT", Description: "made by terraform",
		Network: "projects/" + env.Project + "/global/networks/default"}
	if _, err := env.Compute.NetworkEndpointGroups.Insert(env.Project, zone, n).Context(ctxFor(t)).Do(); err != nil {
		t.Fatalf("creating NEG %s in %s: %v", name, zone, err)
	}
	waitFor(t, 30*time.Second, "NEG "+name+" in "+zone, func() (bool, string) {
		_, err := env.Compute.NetworkEndpointGroups.Get(env.Project, zone, name).Context(ctxFor(t)).Do()
		return err == nil, fmt.Sprint(err)
	})
	return handMadeNEGID(t, zone, name)
}

// handMadeNEGID reads the id of NEG name in zone.
func handMadeNEGID(t *testing.T, zone, name string) uint64 {
	t.Helper()
	n, err := env.Compute.NetworkEndpointGroups.Get(env.Project, zone, name).Context(ctxFor(t)).Do()
	if err != nil {
		t.Fatalf("reading NEG %s in %s: %v", name, zone, err)
	}
	return n.Id
}

// TestNEGBindingReadinessGate: pods of a Service whose port is bound to NEGs made by hand get
// the readiness gate from the webhook, wait (not Ready) while the bound NEGs are in no
// health-checked backend service, and turn Ready once they are and their endpoints are
// HEALTHY — the same gate as for annotation-driven NEGs.
func TestNEGBindingReadinessGate(t *testing.T) {
	ctx := ctxFor(t)
	if err := env.InstallControllerManifests(ctx, "neg-controller", "negbinding"); err != nil {
		t.Fatal(err)
	}
	startGateWebhook(t, 10*time.Minute, "--enable-negbinding")
	ns := labelledNamespace(t)
	name := "e2e-gated-" + ns[len(ns)-4:]
	for _, z := range initialZones {
		createNEGByHand(t, z, name)
	}
	createService(t, ns, "web", "web", "", 80)
	c := negBindingClient(t)
	b := &negbinding.NetworkEndpointGroupBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: negbinding.Spec{BackendRef: &negbinding.BackendRef{Kind: negbinding.ServiceKind, Name: "web", Port: 80},
			NetworkEndpointGroups: []negbinding.SpecNEGRef{{Name: name, Zones: initialZones}}}}
	if _, err := c.Create(ctx, b); err != nil {
		t.Fatalf("creating the binding: %v", err)
	}
	waitFor(t, time.Minute, "binding accepted", func() (bool, string) {
		got, err := c.Get(ctx, ns, "web")
		if err != nil {
			return false, err.Error()
		}
		cond := got.Status.FindCondition(negbinding.ConditionNEGsAccepted)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("condition %+v", cond)
	})
	createDeployment(t, ns, "web", 3, 8080)
	expectBound(t, c, ns, "web", "web", name, initialZones, 3)
	waitFor(t, time.Minute, "pods gated and waiting", func() (bool, string) {
		return podsWithReason(t, ns, "web", 3, readiness.ReasonNotReady)
	})
	if n := podReady(t, ns, "web"); n != 0 {
		t.Errorf("%d pods Ready before their bound NEGs are health-checked", n)
	}
	wireHealthCheckedBackend(t, "bound-"+ns, name, initialZones)
	waitFor(t, time.Minute, "pods LoadBalancerNegReady", func() (bool, string) {
		return podsWithReason(t, ns, "web", 3, readiness.ReasonReady)
	})
	waitFor(t, 30*time.Second, "pods Ready", func() (bool, string) {
		n := podReady(t, ns, "web")
		return n == 3, fmt.Sprintf("%d/3 Ready", n)
	})
}
