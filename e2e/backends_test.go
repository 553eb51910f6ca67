//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/test/objects"
	"github.com/neg-controller/neg-controller/test/podsim"
	"github.com/neg-controller/neg-controller/test/stack"
)

const (
	bsPatchMethod = "compute.backendServices.patch"
	allowShared   = "--backend-service-allow=e2e-shared-.*"
)

// TestBackendServiceSharedByTwoClusters: two clusters (two control planes, two controllers, two
// cluster UIDs) wire their Service's NEGs into one backend service that also holds a hand-made
// backend, concurrently, while 30% of the backend service updates fail with 412 on top of the
// genuine races between the two writers. Each manages only its own backends: all end up there,
// a new zone of one cluster is added while the other cluster's Service is deleted (its backends
// removed before its NEGs are deleted), and the hand-made backend is never touched.
func TestBackendServiceSharedByTwoClusters(t *testing.T) {
	ctx := ctxFor(t)
	restartController(t, allowShared)
	t.Cleanup(func() { restartController(t) })

	peer, err := env.StartPeer(ctx, stack.PeerOptions{Name: "peer", NodeZones: initialZones, NodesPerZone: 1})
	if err != nil {
		t.Fatalf("starting the second cluster: %v", err)
	}
	t.Cleanup(peer.Stop)
	if _, err := peer.StartController(append(slices.Clone(controllerFlags), allowShared)...); err != nil {
		t.Fatal(err)
	}

	ns := newNamespace(t)
	suffix := ns[len(ns)-4:]
	sharedBS := "e2e-shared-bs-" + suffix
	hand := handMadeBackend(t, ctx, "us-central1-a", "e2e-by-hand-"+suffix)
	createBackendService(t, ctx, sharedBS, hand)
	env.GCE.InjectFault(fakegce.Fault{Method: bsPatchMethod, Code: 412, Reason: "conditionNotMet", Rate: 0.4})
	t.Cleanup(env.GCE.ClearFaults)
	mark := time.Now()

	if _, err := peer.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	autoneg := func(rate int) string {
		return fmt.Sprintf(`{"backend_services":{"80":[{"name":%q,"max_rate_per_endpoint":"%d"}]}}`, sharedBS, rate)
	}
	clusters := []kubernetes.Interface{env.Kube, peer.Kube}
	var wg sync.WaitGroup
	for _, kube := range clusters {
		wg.Go(func() { createWiredService(t, kube, ns, autoneg(10)) })
	}
	wg.Wait()

	negs := make([]string, len(clusters))
	for i, kube := range clusters {
		negs[i] = waitNEGName(t, kube, ns, "web")
	}
	if negs[0] == negs[1] {
		t.Fatalf("both clusters use NEG name %s", negs[0])
	}
	wired := func(rate float64) []*compute.Backend {
		want := []*compute.Backend{hand}
		for _, n := range negs {
			for _, z := range initialZones {
				want = append(want, rateBackend(z, n, rate))
			}
		}
		return want
	}
	expectBackends(t, sharedBS, wired(10), 3*time.Minute)
	// Both clusters change their backends at the same moment, a few times.
	for _, rate := range []int{20, 30, 40} {
		for _, kube := range clusters {
			wg.Go(func() { setAutonegAnnotation(t, kube, ns, "web", autoneg(rate)) })
		}
		wg.Wait()
		expectBackends(t, sharedBS, wired(float64(rate)), 3*time.Minute)
	}
	for i, kube := range clusters {
		waitFor(t, time.Minute, fmt.Sprintf("autoneg status in cluster %d", i+1), func() (bool, string) {
			svc, err := kube.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			v := svc.Annotations[annotation.AutonegStatusKey]
			return strings.Contains(v, `"`+sharedBS+`":{"name":"`+sharedBS+`","max_rate_per_endpoint":40}`) && strings.Contains(v, negs[i]), v
		})
	}

	// Concurrently: the first cluster gets a node in a new zone, the second deletes its Service.
	node := podsim.NodeSpec{Name: "e2e-bs-node-" + spareZone, Zone: spareZone, PodCIDR: "10.64.201.0/24", IP: "10.1.0.201"}
	wg.Go(func() {
		if err := podsim.AddNode(ctx, env.Kube, env.Compute, env.Project, node); err != nil {
			t.Errorf("adding node: %v", err)
		}
	})
	wg.Go(func() {
		if err := peer.Kube.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting the second cluster's Service: %v", err)
		}
	})
	wg.Wait()
	t.Cleanup(func() { _ = podsim.RemoveNode(context.Background(), env.Kube, env.Compute, env.Project, node) })

	want := []*compute.Backend{hand}
	for _, z := range append(slices.Clone(initialZones), spareZone) {
		want = append(want, rateBackend(z, negs[0], 40))
	}
	expectBackends(t, sharedBS, want, 3*time.Minute)
	expectNoNEG(t, negs[1], 2*time.Minute)
	// Stable: nothing is lost or re-added afterwards.
	time.Sleep(3 * time.Second)
	expectBackends(t, sharedBS, want, time.Second)

	var conflicts, patches, inUse int
	for _, r := range env.GCE.Requests() {
		if r.Time.Before(mark) {
			continue
		}
		switch {
		case r.Method == bsPatchMethod && r.Status == 412:
			conflicts++
		case r.Method == bsPatchMethod:
			patches++
		case r.Method == deleteMethod && r.Status == 400:
			inUse++
		}
	}
	t.Logf("backend service patches: %d accepted, %d refused with 412", patches, conflicts)
	if conflicts == 0 {
		t.Errorf("no 412 was ever answered: the race was not exercised")
	}
	if inUse != 0 {
		t.Errorf("%d NEG deletes failed: backends were not removed before the NEGs", inUse)
	}
}

// handMadeBackend creates a NEG without description, as a user wiring by hand would, and returns
// the backend they would add for it.
func handMadeBackend(t *testing.T, ctx context.Context, zone, name string) *compute.Backend {
	t.Helper()
	n := &compute.NetworkEndpointGroup{Name: name, NetworkEndpointType: "GCE_VM_IP_PORT",
		Network: "projects/" + env.Project + "/global/networks/default"}
	if _, err := env.Compute.NetworkEndpointGroups.Insert(env.Project, zone, n).Context(ctx).Do(); err != nil {
		t.Fatalf("creating NEG %s: %v", name, err)
	}
	waitFor(t, 30*time.Second, "NEG "+name, func() (bool, string) {
		_, err := env.Compute.NetworkEndpointGroups.Get(env.Project, zone, name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	})
	return &compute.Backend{Group: gce.NEGURL(env.Project, zone, name), BalancingMode: "RATE", MaxRatePerEndpoint: 3,
		CapacityScaler: 0.5, Description: "wired by hand"}
}

func createBackendService(t *testing.T, ctx context.Context, name string, bes ...*compute.Backend) {
	t.Helper()
	bs := &compute.BackendService{Name: name, Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: bes}
	if _, err := env.Compute.BackendServices.Insert(env.Project, bs).Context(ctx).Do(); err != nil {
		t.Fatalf("creating backend service: %v", err)
	}
	waitFor(t, 30*time.Second, "backend service "+name, func() (bool, string) {
		_, err := env.Compute.BackendServices.Get(env.Project, name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	})
}

func rateBackend(zone, neg string, r float64) *compute.Backend {
	return &compute.Backend{Group: gce.NEGURL(env.Project, zone, neg), BalancingMode: "RATE", MaxRatePerEndpoint: r, CapacityScaler: 1}
}

// backendKey renders the fields of a backend this test compares.
func backendKey(b *compute.Backend) string {
	return fmt.Sprintf("%s mode=%s rate=%g cap=%g desc=%q", b.Group, b.BalancingMode, b.MaxRatePerEndpoint, b.CapacityScaler, b.Description)
}

// expectBackends waits until the backend service holds exactly want (in any order).
func expectBackends(t *testing.T, name string, want []*compute.Backend, timeout time.Duration) {
	t.Helper()
	var w []string
	for _, b := range want {
		w = append(w, backendKey(b))
	}
	slices.Sort(w)
	waitFor(t, timeout, fmt.Sprintf("backend service %s holds %d backends", name, len(want)), func() (bool, string) {
		bs, err := env.Compute.BackendServices.Get(env.Project, name).Context(ctxFor(t)).Do()
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, b := range bs.Backends {
			got = append(got, backendKey(b))
		}
		slices.Sort(got)
		return slices.Equal(got, w), fmt.Sprintf("have:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(w, "\n  "))
	})
}

// createWiredService creates Deployment and Service "web" (3 pods, port 80 → 8080) with a NEG
// for port 80 and the autoneg annotation, in the cluster of kube.
func createWiredService(t *testing.T, kube kubernetes.Interface, ns, autoneg string) {
	d := objects.Deployment(ns, "web", 3, 8080)
	if _, err := kube.AppsV1().Deployments(ns).Create(ctxFor(t), d, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating deployment: %v", err)
		return
	}
	svc := objects.Service(ns, "web", "web", 80)
	svc.Annotations = map[string]string{annotation.NEGKey: standalone80, annotation.AutonegKey: autoneg}
	if _, err := kube.CoreV1().Services(ns).Create(ctxFor(t), svc, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating service: %v", err)
	}
}

// waitNEGName waits for the Service's neg-status and returns its port-80 NEG name.
func waitNEGName(t *testing.T, kube kubernetes.Interface, ns, name string) string {
	t.Helper()
	var neg string
	waitFor(t, 90*time.Second, "neg-status of "+ns+"/"+name, func() (bool, string) {
		svc, err := kube.CoreV1().Services(ns).Get(ctxFor(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st, err := annotation.ParseStatus(svc.Annotations[annotation.NEGStatusKey])
		if err != nil {
			return false, "no neg-status"
		}
		neg = st.NetworkEndpointGroups["80"]
		return neg != "" && len(st.Zones) == len(initialZones), svc.Annotations[annotation.NEGStatusKey]
	})
	return neg
}

// setAutonegAnnotation sets the autoneg annotation of a Service, retrying on update conflicts
// (the controller writes the status annotation concurrently).
func setAutonegAnnotation(t *testing.T, kube kubernetes.Interface, ns, name, value string) {
	ctx := ctxFor(t)
	for attempt := 0; attempt < 10; attempt++ {
		svc, err := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("get service: %v", err)
			return
		}
		svc.Annotations[annotation.AutonegKey] = value
		if _, err = kube.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err == nil {
			return
		} else if !apierrors.IsConflict(err) {
			t.Errorf("update service: %v", err)
			return
		}
	}
	t.Errorf("update service: conflicts")
}
