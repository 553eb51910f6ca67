//go:build e2e

package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRunHybrid is `make run HYBRID=1` up to "running": nodes with only eu-west-1 zone labels (no
// instances, no providerID); the sample app's NEGs are NON_GCP_PRIVATE_IP_PORT NEGs in exactly
// the mapped zones, holding every pod without instance; the controller has put them in the
// backend service, and requests through the emulated load balancer reach the pods.
func TestRunHybrid(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := start(ctx, runOptions{dir: t.TempDir(), gceListen: "127.0.0.1:0",
		manifest: "../../../manifests/examples/sample-app.yaml", hybrid: true})
	if s != nil {
		defer s.st.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}

	nodes, err := s.st.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Spec.ProviderID != "" || !strings.HasPrefix(n.Labels["topology.kubernetes.io/zone"], "eu-west-1") {
			t.Errorf("node %s: providerID %q, zone label %q", n.Name, n.Spec.ProviderID, n.Labels["topology.kubernetes.io/zone"])
		}
	}
	if st := s.st.GCE.State(); len(st.Instances) != 0 {
		t.Errorf("%d GCE instances, want none", len(st.Instances))
	}

	want := []string{"us-central1-a", "us-central1-b", "us-central1-c"}
	if zones := slices.Sorted(slices.Values(s.status.Zones)); !slices.Equal(zones, want) {
		t.Errorf("NEG zones %v, want %v (eu-west-1a/b/c mapped)", zones, want)
	}
	if err := checkHybridNEGs(ctx, s.st, s.status); err != nil {
		t.Error(err)
	}
	bs, err := s.st.Compute.BackendServices.Get(s.st.Project, hybridBackendService).Context(ctx).Do()
	if err != nil || len(bs.Backends) != len(want) {
		t.Errorf("backend service %s: %+v, %v; want a backend per zone", hybridBackendService, bs, err)
	}

	// Requests spread over the pods: more than one pod answers.
	pods := map[string]bool{}
	for range 12 {
		code, body, err := get("http://" + s.frontend + "/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET through the load balancer: %d %q %v", code, body, err)
		}
		pods[body] = true
	}
	if len(pods) < 2 {
		t.Errorf("answered by %v, want several pods", pods)
	}
}
