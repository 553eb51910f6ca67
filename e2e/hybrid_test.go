//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/pkg/zones"
	"github.com/neg-controller/neg-controller/test/objects"
)

// The suite's nodes carry GCE zone labels and instances. For hybrid NEGs the controller places
// nodes by their zone label alone (--zone-mapping; a label that is a zone of the region maps to
// itself), so mapping the label us-central1-a to us-central1-f shows the mapping at work on the
// real API server without nodes of another cloud (which the suite's other Services would see).
const hybridZoneMapping = "us-central1-a=us-central1-f"

// mappedZone is the GCE zone of a node's zone label under hybridZoneMapping.
func mappedZone(label string) string {
	if label == "us-central1-a" {
		return "us-central1-f"
	}
	return label
}

// sameZone is the GCE zone of a node's zone label without mapping.
func sameZone(label string) string { return label }

// createHybridService creates a Service selecting app=name, port 80 → "http", annotated
// solutions.cloud.google.com/hybrid-neg for port 80.
func createHybridService(t *testing.T, ns, name string) {
	t.Helper()
	svc := objects.Service(ns, name, name, 80)
	svc.Annotations = map[string]string{annotation.HybridNEGKey: `{"exposed_ports":{"80":{}}}`}
	if _, err := env.Kube.CoreV1().Services(ns).Create(ctxFor(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating service: %v", err)
	}
}

// hybridStatus reads the Service's hybrid-neg-status annotation.
func hybridStatus(t *testing.T, ns, name string) (annotation.Status, bool) {
	svc, err := env.Kube.CoreV1().Services(ns).Get(ctxFor(t), name, metav1.GetOptions{})
	if err != nil {
		return annotation.Status{}, false
	}
	st, ok, err := annotation.StatusOf(svc, annotation.Source{StatusKey: annotation.HybridNEGStatusKey})
	return st, ok && err == nil
}

// hybridPodEndpoints returns, per GCE zone (the zone label of the pod's node, mapped by
// gceZone), the instance-less endpoints of the pods labelled app=selector on targetPort.
func hybridPodEndpoints(t *testing.T, ns, selector string, targetPort int64, gceZone func(string) string) (map[string]neg.EndpointSet, int, error) {
	ctx := ctxFor(t)
	pods, err := env.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + selector})
	if err != nil {
		return nil, 0, err
	}
	out, n := map[string]neg.EndpointSet{}, 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Spec.NodeName == "" {
			continue
		}
		node, err := env.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, 0, err
		}
		z := gceZone(node.Labels[zones.LabelZone])
		if out[z] == nil {
			out[z] = neg.EndpointSet{}
		}
		out[z].Insert(neg.Endpoint{IP: p.Status.PodIP, Port: targetPort})
		n++
	}
	return out, n, nil
}

// expectHybridSynced waits until the Service's hybrid-neg-status names the NEG of port 80, the
// NEG is a NON_GCP_PRIVATE_IP_PORT NEG without subnetwork in exactly the zones the status lists,
// and each holds the endpoints without instance of the pods (pods of them) whose nodes' zone
// labels gceZone maps to its zone. It returns the NEG name and zones.
func expectHybridSynced(t *testing.T, srv *fakegce.Server, ns, name string, pods int, gceZone func(string) string) (string, []string) {
	t.Helper()
	var negName string
	var st annotation.Status
	waitFor(t, 90*time.Second, "hybrid NEGs of "+ns+"/"+name+" in sync", func() (bool, string) {
		var ok bool
		if st, ok = hybridStatus(t, ns, name); !ok {
			return false, "no hybrid-neg-status"
		}
		negName = st.NetworkEndpointGroups["80"]
		want, n, err := hybridPodEndpoints(t, ns, name, 8080, gceZone)
		if err != nil || n != pods {
			return false, fmt.Sprintf("%d pods with IPs, want %d (%v)", n, pods, err)
		}
		var got []string
		for _, z := range srv.State().Zones {
			eps, ok := srv.NEGEndpoints(z, negName)
			if !ok {
				continue
			}
			got = append(got, z)
			if set := neg.NewEndpointSet(eps...); !set.Equal(want[z]) {
				return false, fmt.Sprintf("NEG %s in %s holds %v, want %v", negName, z, eps, want[z])
			}
		}
		if !slices.Equal(got, st.Zones) {
			return false, fmt.Sprintf("NEG %s in %v, hybrid-neg-status says %v", negName, got, st.Zones)
		}
		return true, ""
	})
	return negName, st.Zones
}

// checkHybridNEGs checks that the NEGs are hybrid (type, network, no subnetwork).
func checkHybridNEGs(t *testing.T, cloud gce.Cloud, name string, zones []string) {
	t.Helper()
	for _, z := range zones {
		n, err := cloud.GetNEG(ctxFor(t), z, name)
		if err != nil || n.Type != gce.TypeNonGCPPrivateIPPort || n.Subnetwork != "" || gce.LastSegment(n.Network) != "default" {
			t.Errorf("NEG %s in %s: %+v, %v", name, z, n, err)
		}
	}
}

// e2eCloud is an adapter on the suite's emulator, for reads.
func e2eCloud(t *testing.T, base string) gce.Cloud {
	t.Helper()
	c, err := gce.New(ctxFor(t), gce.Config{Project: env.Project, Region: env.Region, Endpoint: base, WithoutAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHybridNEGs: a Service annotated solutions.cloud.google.com/hybrid-neg (controller in gce
// mode) gets NON_GCP_PRIVATE_IP_PORT NEGs in the zones its pods' nodes map to (zone label a →
// GCE zone f, b and c as they are), with instance-less endpoints, its status in
// hybrid-neg-status (no neg-status); the readiness gate holds the pods until the NEGs are in a
// health-checked backend service (an EXTERNAL_MANAGED one: hybrid backends are proxy-only), then
// opens; the NEGs follow a scale 3 → 50 → 0, the gate opening for the new pods.
func TestHybridNEGs(t *testing.T) {
	startGateWebhook(t, 2*time.Minute, "--zone-mapping="+hybridZoneMapping)
	ns := labelledNamespace(t)
	createHybridService(t, ns, "web")
	createDeployment(t, ns, "web", 3, 8080)

	waitFor(t, 60*time.Second, "pods gated and waiting", func() (bool, string) {
		return podsWithReason(t, ns, "web", 3, readiness.ReasonNotReady)
	})
	name, negZones := expectHybridSynced(t, env.GCE, ns, "web", 3, mappedZone)
	if want := []string{"us-central1-b", "us-central1-c", "us-central1-f"}; !slices.Equal(negZones, want) {
		t.Errorf("NEG zones %v, want %v (a mapped to f)", negZones, want)
	}
	checkHybridNEGs(t, e2eCloud(t, env.GCEURL), name, negZones)
	if _, ok := negStatus(t, ns, "web"); ok {
		t.Error("neg-status written for solutions.cloud.google.com/hybrid-neg")
	}
	if n := podReady(t, ns, "web"); n != 0 {
		t.Errorf("%d pods Ready before their NEGs are health-checked", n)
	}

	wireHealthCheckedBackend(t, "hybrid-"+ns, name, negZones)
	waitFor(t, 60*time.Second, "pods LoadBalancerNegReady", func() (bool, string) {
		return podsWithReason(t, ns, "web", 3, readiness.ReasonReady)
	})
	waitFor(t, 30*time.Second, "pods Ready", func() (bool, string) {
		n := podReady(t, ns, "web")
		return n == 3, fmt.Sprintf("%d/3 Ready", n)
	})

	scale(t, ns, "web", 50)
	expectHybridSynced(t, env.GCE, ns, "web", 50, mappedZone)
	waitFor(t, 60*time.Second, "new pods LoadBalancerNegReady", func() (bool, string) {
		return podsWithReason(t, ns, "web", 50, readiness.ReasonReady)
	})
	scale(t, ns, "web", 0)
	if _, zones := expectHybridSynced(t, env.GCE, ns, "web", 0, mappedZone); !slices.Equal(zones, negZones) {
		t.Errorf("scaled to 0: NEGs in %v, want them kept (empty) in %v", zones, negZones)
	}
}

// Workload Identity Federation values of TestHybridWorkloadIdentityFederation.
const (
	wifAudience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/neg-controller/providers/eks"
	wifSA       = "neg-controller@test-project.iam.gserviceaccount.com"
	wifSubject  = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig"
)

// writeCredentialConfig writes the subject token file (as the kubelet writes the projected
// token) and an external_account credential configuration (as `gcloud iam
// workload-identity-pools create-cred-config` writes it) pointing at the emulator's STS and IAM
// Credentials endpoints; it returns the configuration's path.
func writeCredentialConfig(t *testing.T, base string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(wifSubject), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{
		"universe_domain":                   "googleapis.com",
		"type":                              "external_account",
		"audience":                          wifAudience,
		"subject_token_type":                "urn:ietf:params:oauth:token-type:jwt",
		"token_url":                         base + "/v1/token",
		"service_account_impersonation_url": base + "/v1/projects/-/serviceAccounts/" + wifSA + ":generateAccessToken",
		"credential_source":                 map[string]any{"file": tokenFile, "format": map[string]string{"type": "text"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credential-configuration.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHybridWorkloadIdentityFederation: the controller binary, with only an external_account
// credential configuration (GOOGLE_APPLICATION_CREDENTIALS) and no metadata server, runs
// against an emulator that requires tokens (--require-auth): Application Default Credentials
// trade the projected token at STS and impersonate the service account, and every Compute call
// that makes hybrid NEGs (no GCE instances exist in that emulator: hybrid endpoints need none)
// carries the service account's token.
func TestHybridWorkloadIdentityFederation(t *testing.T) {
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: env.Project, Region: env.Region,
		Zones: append(append([]string(nil), initialZones...), spareZone), OperationLatency: 20 * time.Millisecond,
		Auth: &fakegce.AuthConfig{Required: true, SubjectToken: wifSubject, Audience: wifAudience, ServiceAccounts: []string{wifSA}}})
	// Cleanups run last first: the environment is restored before the usual controller restarts.
	t.Cleanup(func() { restartController(t) })
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", writeCredentialConfig(t, base))
	t.Setenv("GCE_METADATA_HOST", "")
	restartController(t, "--gce-endpoint="+base, "--zone-mapping="+hybridZoneMapping)

	ns := newNamespace(t)
	createHybridService(t, ns, "web")
	createDeployment(t, ns, "web", 4, 8080)
	expectHybridSynced(t, srv, ns, "web", 4, mappedZone)

	var sts, iam, calls int
	for _, r := range srv.Requests() {
		switch {
		case r.Method == "sts.token" && r.Status == 200:
			sts++
		case r.Method == "iamcredentials.generateAccessToken" && r.Status == 200:
			iam++
		case strings.HasPrefix(r.Method, "compute."):
			calls++
			if r.Principal != "serviceAccount:"+wifSA || r.Status >= 400 {
				t.Errorf("Compute call %s %s: status %d, principal %q", r.Method, r.Path, r.Status, r.Principal)
			}
		}
	}
	if sts == 0 || iam == 0 || calls == 0 {
		t.Errorf("token exchanges %d, impersonations %d, Compute calls %d; want each > 0", sts, iam, calls)
	}
}

// TestHybridMigrationFromHybridNEGController: a Service left by k8s-hybrid-neg-controller (its
// annotation, its hybrid-neg-status naming the NEGs it created — marked with its NEG annotations
// — holding the pods, its finalizer) is left alone without --adopt-hybrid-neg-controller-negs
// (Warning), and taken over with it: the same NEGs keep their name and endpoints (not
// re-created, nothing detached), the finalizer goes (a resourceVersion-conditioned patch the
// real API server checks), the NEGs follow a scale-up, and the Service's deletion deletes them.
func TestHybridMigrationFromHybridNEGController(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	var want map[string]neg.EndpointSet
	waitFor(t, 60*time.Second, "pods running", func() (bool, string) {
		var n int
		var err error
		want, n, err = hybridPodEndpoints(t, ns, "web", 8080, sameZone)
		return n == 3, fmt.Sprintf("%d pods with IPs (%v)", n, err)
	})
	// Its NEGs in the zones of the pods, named as it names port 80 (its cluster ID c0ffee12).
	name := naming.HybridControllerName("c0ffee12", ns, "web", 80)
	ids := map[string]uint64{}
	var negZones []string
	for z, eps := range want {
		ids[z] = createTheirNEG(t, z, name, ns+"/web", eps)
		negZones = append(negZones, z)
	}
	slices.Sort(negZones)
	svc := objects.Service(ns, "web", "web", 80)
	zonesJSON, _ := json.Marshal(negZones)
	svc.Annotations = map[string]string{annotation.HybridNEGKey: `{"exposed_ports":{"80":{}}}`,
		annotation.HybridNEGStatusKey: fmt.Sprintf(`{"network_endpoint_groups":{"80":%q},"zones":%s}`, name, zonesJSON)}
	svc.Finalizers = []string{"solutions.cloud.google.com/hybrid-neg"}
	if _, err := env.Kube.CoreV1().Services(ns).Create(ctxFor(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mark := time.Now()

	expectEvent(t, ns, "web", "HybridNEGControllerService", 60*time.Second)
	if n := mutationsOn(name, mark); n != 0 {
		t.Errorf("%d calls changed the NEGs of a Service left to k8s-hybrid-neg-controller", n)
	}

	t.Cleanup(func() { restartController(t) })
	restartController(t, "--adopt-hybrid-neg-controller-negs")
	waitFor(t, 60*time.Second, "finalizer removed", func() (bool, string) {
		s, err := env.Kube.CoreV1().Services(ns).Get(ctxFor(t), "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(s.Finalizers) == 0, fmt.Sprintf("finalizers %v", s.Finalizers)
	})
	expectEvent(t, ns, "web", "Adopt", 30*time.Second)
	if got, _ := expectHybridSynced(t, env.GCE, ns, "web", 3, sameZone); got != name {
		t.Errorf("after the takeover the NEG is %s, want %s", got, name)
	}
	for z, id := range ids {
		if n, err := env.Compute.NetworkEndpointGroups.Get(env.Project, z, name).Context(ctxFor(t)).Do(); err != nil || n.Id != id {
			t.Errorf("NEG %s in %s re-created or gone: %+v, %v", name, z, n, err)
		}
	}
	if n := mutationsOn(name, mark); n != 0 {
		t.Errorf("%d calls changed the NEGs while taking them over in step", n)
	}

	scale(t, ns, "web", 6)
	expectHybridSynced(t, env.GCE, ns, "web", 6, sameZone)
	if err := env.Kube.CoreV1().Services(ns).Delete(ctxFor(t), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNoNEG(t, name, 60*time.Second)
}

// mutationsOn counts the attach, detach and delete requests on NEGs called name since the mark.
func mutationsOn(name string, since time.Time) int {
	n := 0
	for _, r := range env.GCE.Requests() {
		if !r.Time.Before(since) && strings.Contains(r.Path, "/networkEndpointGroups/"+name) &&
			(r.Method == attachMethod || r.Method == detachMethod || r.Method == deleteMethod) {
			n++
		}
	}
	return n
}

// createTheirNEG creates a NEG the way k8s-hybrid-neg-controller does for Service svc
// ("namespace/name"): NON_GCP_PRIVATE_IP_PORT, description "Kubernetes Service", NEG
// annotations created-by and k8s-service; with eps attached. It returns the NEG's id.
func createTheirNEG(t *testing.T, zone, name, svc string, eps neg.EndpointSet) uint64 {
	t.Helper()
	ctx := ctxFor(t)
	_, err := env.Compute.NetworkEndpointGroups.Insert(env.Project, zone, &compute.NetworkEndpointGroup{
		Name: name, NetworkEndpointType: gce.TypeNonGCPPrivateIPPort, Network: "global/networks/default",
		Description: naming.HybridControllerDescription, Annotations: map[string]string{
			naming.HybridControllerCreatedByKey: naming.HybridControllerCreatedBy, naming.HybridControllerServiceKey: svc},
	}).Context(ctx).Do()
	if err != nil {
		t.Fatalf("creating their NEG: %v", err)
	}
	var nes []*compute.NetworkEndpoint
	for e := range eps {
		nes = append(nes, &compute.NetworkEndpoint{IpAddress: e.IP, Port: e.Port})
	}
	waitFor(t, 30*time.Second, "their NEG's endpoints", func() (bool, string) {
		got, ok := env.GCE.NEGEndpoints(zone, name)
		if ok && len(got) == len(nes) {
			return true, ""
		}
		if ok && len(got) == 0 {
			_, err := env.Compute.NetworkEndpointGroups.AttachNetworkEndpoints(env.Project, zone, name,
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: nes}).Context(ctx).Do()
			if err != nil {
				return false, err.Error()
			}
		}
		return false, fmt.Sprintf("%d endpoints", len(got))
	})
	n, err := env.Compute.NetworkEndpointGroups.Get(env.Project, zone, name).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	return n.Id
}
