//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/test/rollout"
)

// TestDualStackSwitchUnderLoad: on dual-stack nodes and a dual-stack subnetwork, a 10-replica
// Service behind an emulated load balancer (health-checked, probed for real) is switched from
// single- to dual-stack while a client sends 200 requests/s through the frontend. Its NEGs end
// with every pod's IPv4 and IPv6 address, and no request fails on the way: the controller
// keeps the IPv4 endpoints until the pods' IPv6 addresses are in the slices, then replaces
// them in steps. Afterwards the backend service is switched to IPV6_ONLY and the load balancer
// serves every request over the pods' IPv6 addresses.
func TestDualStackSwitchUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	opts := rollout.StackOptions()
	opts.DualStack = true
	st, ctrl, alive := startServingStack(ctx, t, opts, append(rollout.ControllerFlags(), "--dual-stack-migration-pause=2s")...)
	cfg := rollout.Config{Namespace: "default", Name: "ds", Replicas: 10, Rate: 200, Logf: t.Logf, Alive: alive}
	fx, err := rollout.Setup(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// podEndpoints returns the NEG endpoints the pods should give, per zone: IPv4 only, or
	// with each pod's IPv6 address.
	podEndpoints := func(ctx context.Context, dual bool) (map[string]neg.EndpointSet, error) {
		pods, err := st.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=ds"})
		if err != nil {
			return nil, err
		}
		nodeZone := map[string]string{}
		for _, n := range st.Nodes {
			nodeZone[n.Name] = n.Zone
		}
		out := map[string]neg.EndpointSet{}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
				continue
			}
			e := neg.Endpoint{Instance: p.Spec.NodeName, IP: p.Status.PodIP, Port: 8080}
			if dual {
				for _, ip := range p.Status.PodIPs {
					if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() {
						e.IPv6 = a.String()
					}
				}
				if e.IPv6 == "" {
					return nil, fmt.Errorf("pod %s has no IPv6 address", p.Name)
				}
			}
			z := nodeZone[p.Spec.NodeName]
			if out[z] == nil {
				out[z] = neg.EndpointSet{}
			}
			out[z].Insert(e)
		}
		return out, nil
	}
	negsHold := func(dual bool) func(context.Context) (bool, string) {
		return func(ctx context.Context) (bool, string) {
			want, err := podEndpoints(ctx, dual)
			if err != nil {
				return false, err.Error()
			}
			for _, z := range fx.Zones {
				got, ok := st.GCE.NEGEndpoints(z, fx.NEG)
				if !ok {
					return false, "no NEG in " + z
				}
				if gs := neg.NewEndpointSet(got...); !gs.Equal(want[z]) {
					return false, fmt.Sprintf("NEG in %s holds %v, want %v", z, neg.Sample(gs.Sorted(), 3), neg.Sample(want[z].Sorted(), 3))
				}
			}
			return true, ""
		}
	}
	if err := fx.WaitFor(ctx, time.Minute, "IPv4 endpoints", negsHold(false)); err != nil {
		t.Fatal(err)
	}

	toDualStack := func(ctx context.Context) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			svc, err := st.Kube.CoreV1().Services("default").Get(ctx, "ds", metav1.GetOptions{})
			if err != nil {
				return err
			}
			svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
			svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
			_, err = st.Kube.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{})
			return err
		})
	}
	migrated := func(ctx context.Context) error {
		return fx.WaitFor(ctx, 3*time.Minute, "dual-stack endpoints in every NEG", negsHold(true))
	}
	res, err := fx.RunChange(ctx, "single → dual-stack", toDualStack, migrated)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 {
		t.Errorf("%d of %d requests failed during the switch (first: %v)", res.Failed, res.Requests, res.FirstError)
	}
	if res.OK < 500 {
		t.Errorf("only %d requests succeeded during the switch: the client did not keep up", res.OK)
	}
	t.Logf("switch: %s, %d requests OK, p99 %s", res.Rollout.Round(time.Second), res.OK, res.P99)

	// Over IPv6 only: the load balancer reaches the pods at their IPv6 addresses.
	bs, err := st.Compute.BackendServices.Get(st.Project, "ds-bs").Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	patch := &compute.BackendService{IpAddressSelectionPolicy: "IPV6_ONLY", Fingerprint: bs.Fingerprint}
	if _, err := st.Compute.BackendServices.Patch(st.Project, "ds-bs", patch).Context(ctx).Do(); err != nil {
		t.Fatalf("switching the backend service to IPV6_ONLY: %v", err)
	}
	if err := fx.WaitFor(ctx, time.Minute, "IPv6 health", func(ctx context.Context) (bool, string) {
		healthy := 0
		for _, z := range fx.Zones {
			eps, err := st.Compute.NetworkEndpointGroups.ListNetworkEndpoints(st.Project, z, fx.NEG,
				&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: "SHOW"}).Context(ctx).Do()
			if err != nil {
				return false, err.Error()
			}
			for _, it := range eps.Items {
				for _, h := range it.Healths {
					if h.Ipv6HealthState == "HEALTHY" {
						healthy++
					}
				}
			}
		}
		return healthy == int(cfg.Replicas), fmt.Sprintf("%d of %d endpoints HEALTHY over IPv6", healthy, cfg.Replicas)
	}); err != nil {
		t.Fatal(err)
	}
	before, _ := st.GCE.Frontend(fx.Frontend)
	res, err = fx.RunChange(ctx, "IPv6 only", func(context.Context) error { return nil },
		func(ctx context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	after, _ := st.GCE.Frontend(fx.Frontend)
	if res.Failed != 0 || res.OK < 200 {
		t.Errorf("over IPv6: %d requests OK, %d failed (first: %v)", res.OK, res.Failed, res.FirstError)
	}
	var v4, v6 int64
	for addr, n := range after.Endpoints {
		if d := n - before.Endpoints[addr]; strings.HasPrefix(addr, "[") {
			v6 += d
		} else {
			v4 += d
		}
	}
	if v6 < int64(res.OK) || v4 != 0 {
		t.Errorf("over IPv6: the frontend forwarded %d requests to IPv6 and %d to IPv4 addresses, want all %d to IPv6", v6, v4, res.OK)
	}
	if ctrl.Exited() {
		t.Errorf("controller exited:\n%s", ctrl.LogTail(40))
	}
}
