//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// The safety rules of issue 12 against the real control plane: the controller never freezes,
// empties or deletes a NEG a load balancer uses that it does not own.

// negEndpoints returns every endpoint of the NEGs called name, all zones together.
func negEndpoints(name string) neg.EndpointSet {
	got := neg.EndpointSet{}
	for _, eps := range gceNEGs(name) {
		got.Insert(eps...)
	}
	return got
}

// TestCustomNameClaimFromOtherNamespace: Service evil/squat, older than prod/web, claims the
// custom NEG name prod/web's NEG already has. The claim is refused (NEGNameConflict on the
// claimant only) and prod/web's NEG keeps following its pods.
func TestCustomNameClaimFromOtherNamespace(t *testing.T) {
	evil, prod := newNamespace(t), newNamespace(t)
	custom := "e2e-prod-web-" + prod[len(prod)-4:]
	createDeployment(t, evil, "squat", 1, 8080)
	createService(t, evil, "squat", "squat", "", 80) // older than prod/web
	createDeployment(t, prod, "web", 3, 8080)
	createService(t, prod, "web", "web", `{"exposed_ports":{"80":{"name":"`+custom+`"}}}`, 80)
	expectSynced(t, prod, "web", "web", 80, 8080, 3, 90*time.Second)

	setNEGAnnotation(t, evil, "squat", `{"exposed_ports":{"80":{"name":"`+custom+`"}}}`)
	ev := expectEvent(t, evil, "squat", "NEGNameConflict", 60*time.Second)
	if ev.Type != "Warning" {
		t.Errorf("claimant event type %s, want Warning", ev.Type)
	}

	// prod rolls its pods (new IPs) and grows: the NEG follows, the claimant changed nothing.
	scale(t, prod, "web", 5)
	if name := expectSynced(t, prod, "web", "web", 80, 8080, 5, 90*time.Second); name != custom {
		t.Fatalf("prod/web uses NEG %q, want %q", name, custom)
	}
	pods, err := env.Kube.CoreV1().Pods(prod).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items[:2] {
		if err := env.Kube.CoreV1().Pods(prod).Delete(ctxFor(t), p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	expectSynced(t, prod, "web", "web", 80, 8080, 5, 90*time.Second)
	evs, err := env.Kube.CoreV1().Events(prod).List(ctxFor(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == "NEGNameConflict" {
			t.Errorf("owner got a NEGNameConflict event: %s", e.Message)
		}
	}
	if _, ok := negStatus(t, evil, "squat"); ok {
		t.Errorf("the refused claimant got a neg-status")
	}
}

// TestInUseNEGNeverEmptied: a NEG the Service stops wanting (its port dropped from the
// annotation) while a backend service made outside the controller uses it keeps its endpoints —
// following the pods while the Service has the port, as they are once the Service is gone —
// and is deleted once the backend service lets go.
func TestInUseNEGNeverEmptied(t *testing.T) {
	ctx := ctxFor(t)
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 4, 8080)
	createTwoPortService(t, ns, "web", "web", `{"exposed_ports":{"80":{},"443":{}}}`)
	keep := expectSynced(t, ns, "web", "web", 80, 8080, 4, 90*time.Second)
	used := expectSynced(t, ns, "web", "web", 443, 8080, 4, 90*time.Second)

	bsName := "e2e-inuse-bs-" + ns[len(ns)-4:]
	var backends []*compute.Backend
	for zone := range gceNEGs(used) {
		backends = append(backends, rateBackend(zone, used, 100))
	}
	createBackendService(t, ctx, bsName, backends...)
	released := false
	t.Cleanup(func() {
		if !released {
			_, _ = env.Compute.BackendServices.Delete(env.Project, bsName).Context(context.Background()).Do()
		}
	})

	setNEGAnnotation(t, ns, "web", `{"exposed_ports":{"80":{}}}`)
	expectEvent(t, ns, "web", "NEGInUse", 60*time.Second)
	want, err := podEndpoints(t, ns, "web", 8080)
	if err != nil {
		t.Fatal(err)
	}
	if got := negEndpoints(used); !got.Equal(want) {
		t.Fatalf("in-use NEG %s holds %d endpoints, want the pods' %d", used, got.Len(), want.Len())
	}

	// The pods change: the kept NEG follows them while the Service has port 443.
	scale(t, ns, "web", 6)
	waitFor(t, 90*time.Second, "in-use NEG follows the pods", func() (bool, string) {
		want, err := podEndpoints(t, ns, "web", 8080)
		if err != nil {
			return false, err.Error()
		}
		got := negEndpoints(used)
		return want.Len() == 6 && got.Equal(want), fmt.Sprintf("NEG holds %d, pods %d", got.Len(), want.Len())
	})

	// The Service goes: the wanted NEG is deleted, the in-use one keeps its endpoints.
	before := negEndpoints(used)
	mark := time.Now()
	if err := env.Kube.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNoNEG(t, keep, 60*time.Second)
	// Its delete is retried while in use; its endpoints must not move.
	waitQuiet(t, mark, 5*time.Second, 90*time.Second, func(r fakegce.RequestRecord) bool {
		return r.Method != deleteMethod && strings.Contains(r.Path, "/networkEndpointGroups/"+used+"/")
	})
	if got := negEndpoints(used); !got.Equal(before) {
		t.Errorf("in-use NEG %s changed after the Service was deleted: %d endpoints, had %d", used, got.Len(), before.Len())
	}

	// Once the backend service lets go, the NEG is deleted on a later retry.
	if _, err := env.Compute.BackendServices.Delete(env.Project, bsName).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	released = true
	expectNoNEG(t, used, 3*time.Minute)
}
