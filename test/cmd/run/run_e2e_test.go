//go:build e2e

package main

import (
	"context"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRunDualStack is `make run` up to "running", as it starts by default: dual-stack nodes and
// pods, the sample app's NEGs holding every pod's IPv4 endpoint (its Service is single-stack),
// and the NetworkEndpointGroupBinding keeping the NEG created beforehand in step (start waits
// for both).
func TestRunDualStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := start(ctx, runOptions{dir: t.TempDir(), gceListen: "127.0.0.1:0", manifest: "../../../manifests/examples/sample-app.yaml",
		bindingManifest: "../../../manifests/examples/negbinding.yaml", dualStack: true})
	if s != nil {
		defer s.st.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(s.bindingZones) != 3 {
		t.Errorf("binding zones %v, want the 3 zones with nodes", s.bindingZones)
	}
	nodes, err := s.st.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if len(n.Spec.PodCIDRs) != 2 {
			t.Errorf("node %s: pod CIDRs %v, want IPv4 and IPv6", n.Name, n.Spec.PodCIDRs)
		}
	}
	pods, err := s.st.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if len(p.Status.PodIPs) != 2 || !netip.MustParseAddr(p.Status.PodIPs[1].IP).Is6() {
			t.Errorf("pod %s: IPs %v, want IPv4 and IPv6", p.Name, p.Status.PodIPs)
		}
	}
	for _, z := range s.status.Zones {
		eps, _ := s.st.GCE.NEGEndpoints(z, s.status.NetworkEndpointGroups["80"])
		for _, e := range eps {
			if e.IPv6 != "" {
				t.Errorf("NEG endpoint %s of a single-stack Service has an IPv6 address", e)
			}
		}
	}
}
