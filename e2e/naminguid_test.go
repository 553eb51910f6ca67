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

// TestNamingUIDSurvivesConfigMapLoss: a Service's NEGs (4 endpoints) sit behind a backend
// service wired by hand (as Terraform would); ConfigMap kube-system/ingress-uid is deleted and
// the controller restarted. It must not mint a new naming UID: it recovers the uid8 from the
// NEG names, stores it again, and the NEGs keep their endpoints, with no NEG inserted.
func TestNamingUIDSurvivesConfigMapLoss(t *testing.T) {
	ctx := ctxFor(t)
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 4, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 4, 90*time.Second)

	cms := env.Kube.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "ingress-uid", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid8 := cm.Data["uid"][:min(8, len(cm.Data["uid"]))]
	if !strings.HasPrefix(name, "k8s1-"+uid8+"-") {
		t.Fatalf("NEG %s was not named with the ConfigMap's uid %q", name, cm.Data["uid"])
	}

	// A backend service that references the NEGs, made outside the controller.
	bsName := "e2e-tf-bs-" + ns[len(ns)-4:]
	var backends []*compute.Backend
	for zone := range gceNEGs(name) {
		backends = append(backends, rateBackend(zone, name, 100))
	}
	createBackendService(t, ctx, bsName, backends...)
	t.Cleanup(func() { // before the namespace goes, so that the NEGs can be deleted
		_, _ = env.Compute.BackendServices.Delete(env.Project, bsName).Context(context.Background()).Do()
	})

	if err := cms.Delete(ctx, "ingress-uid", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	mark := time.Now()
	restartController(t)
	expectReady(t, env.Controller())
	// A new naming UID would insert NEGs of new names, and touch this NEG.
	waitQuiet(t, mark, 5*time.Second, 90*time.Second, func(r fakegce.RequestRecord) bool {
		return r.Method == insertMethod || strings.Contains(r.Path, "/networkEndpointGroups/"+name)
	})

	got := neg.EndpointSet{}
	for _, eps := range gceNEGs(name) {
		got.Insert(eps...)
	}
	want, err := podEndpoints(t, ns, "web", 8080)
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 4 || !got.Equal(want) {
		t.Errorf("NEG %s holds %d endpoints after the restart, want the 4 of the pods", name, got.Len())
	}
	if n := countCalls(insertMethod, mark); n != 0 {
		t.Errorf("%d NEG insert(s) since the restart, want none (a new naming UID?)", n)
	}
	detaches := 0 // of this NEG (other tests' namespaces may still be going away)
	for _, r := range env.GCE.Requests() {
		if !r.Time.Before(mark) && r.Method == detachMethod && strings.Contains(r.Path, "/networkEndpointGroups/"+name+"/") {
			detaches++
		}
	}
	if detaches != 0 {
		t.Errorf("%d detach call(s) on NEG %s since the restart, want none", detaches, name)
	}
	if st, _ := negStatus(t, ns, "web"); st.NetworkEndpointGroups["80"] != name {
		t.Errorf("neg-status names %q, want %s", st.NetworkEndpointGroups["80"], name)
	}
	cm, err = cms.Get(ctx, "ingress-uid", metav1.GetOptions{})
	if err != nil || cm.Data["uid"] != uid8 {
		t.Errorf("ConfigMap ingress-uid after the restart: %v (%v), want uid %q", cm.Data, err, uid8)
	}
}

// waitQuiet waits until the controller has made no GCE mutation that relevant selects for
// quiet, counted from since at the earliest. Other tests' leftovers (a NEG kept in use retries
// its delete every GC period) mutate all the time, so a test waits only on what concerns it.
func waitQuiet(t *testing.T, since time.Time, quiet, timeout time.Duration, relevant func(fakegce.RequestRecord) bool) {
	t.Helper()
	mutations := map[string]bool{insertMethod: true, deleteMethod: true, attachMethod: true, detachMethod: true, bsPatchMethod: true}
	waitFor(t, timeout, fmt.Sprintf("no GCE mutation for %s", quiet), func() (bool, string) {
		last := since
		for _, r := range env.GCE.Requests() {
			if mutations[r.Method] && relevant(r) && r.Time.After(last) {
				last = r.Time
			}
		}
		return time.Since(last) >= quiet, fmt.Sprintf("last mutation %s ago", time.Since(last).Round(time.Millisecond))
	})
}
