package podsim

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestDualStackPlan(t *testing.T) {
	for _, tc := range []struct {
		podCIDR, ipv6, podCIDRv6 string
	}{
		{"10.64.1.0/24", "fd20::4001:0:0", "fd20::4001:40:0/112"},
		{"10.65.254.0/24", "fd20::41fe:0:0", "fd20::41fe:41:0/112"},
		{"10.201.1.0/24", "fd20::c901:0:0", "fd20::c901:c9:0/112"},
		{"10.70.0.0/16", "fd20::4600:0:0", "fd20::4600:46:0/112"},
	} {
		n, err := NodeSpec{Name: "n", Zone: "z", PodCIDR: tc.podCIDR, IP: "10.1.0.1"}.DualStack()
		if err != nil || n.IPv6 != tc.ipv6 || n.PodCIDRv6 != tc.podCIDRv6 {
			t.Errorf("%s: %q %q %v; want %q %q", tc.podCIDR, n.IPv6, n.PodCIDRv6, err, tc.ipv6, tc.podCIDRv6)
			continue
		}
		if err := n.validate(); err != nil {
			t.Errorf("%s: %v", tc.podCIDR, err)
		}
		if !n.nodeIPv6Range().Contains(netip.MustParsePrefix(n.PodCIDRv6).Addr()) {
			t.Errorf("%s: pod range %s outside the node's %s", tc.podCIDR, n.PodCIDRv6, n.nodeIPv6Range())
		}
	}
	// Every pod's two addresses reach the same loopback address.
	n, _ := NodeSpec{Name: "n", Zone: "z", PodCIDR: "10.64.1.0/24", IP: "10.1.0.1"}.DualStack()
	cidr := netip.MustParsePrefix(n.PodCIDRv6)
	for ip := netip.MustParseAddr("10.64.1.2"); ip.Compare(netip.MustParseAddr("10.64.1.254")) <= 0; ip = ip.Next() {
		v6 := podIPv6(cidr, ip)
		lb4, ok4 := fakegce.LoopbackFor(ip.String())
		lb6, ok6 := fakegce.LoopbackFor(v6.String())
		if !cidr.Contains(v6) || !ok4 || !ok6 || lb4 != lb6 {
			t.Fatalf("pod %s: IPv6 %s (in %s: %v), loopback %s/%s", ip, v6, cidr, cidr.Contains(v6), lb4, lb6)
		}
	}
	if got := podIPv6(cidr, netip.MustParseAddr("10.64.1.5")).String(); got != "fd20::4001:40:105" {
		t.Errorf("pod 10.64.1.5: %s, want fd20::4001:40:105", got)
	}
	kept, _ := NodeSpec{PodCIDR: "10.64.1.0/24", IPv6: "fd20::1:0:0", PodCIDRv6: "fd20::1:40:0/104"}.DualStack()
	if kept.IPv6 != "fd20::1:0:0" || kept.PodCIDRv6 != "fd20::1:40:0/104" {
		t.Errorf("given IPv6 fields replaced: %+v", kept)
	}
	for _, cidr := range []string{"192.168.1.0/24", "10.0.0.0/8", "garbage"} {
		if _, err := (NodeSpec{Name: "n", PodCIDR: cidr}).DualStack(); err == nil {
			t.Errorf("DualStack accepted pod CIDR %s", cidr)
		}
	}
}

func TestValidateIPv6(t *testing.T) {
	base := NodeSpec{Name: "n", Zone: "z", PodCIDR: "10.64.1.0/24", IP: "10.1.0.1"}
	for _, tc := range []struct {
		name, ipv6, podCIDRv6, want string
	}{
		{"pod range only", "", "fd20::4001:40:0/112", "IPv6"},
		{"IPv6 only", "fd20::4001:0:0", "", "pod CIDR"},
		{"IPv4 as IPv6", "10.1.0.1", "fd20::4001:40:0/112", "IPv6"},
		{"pod range outside fd00::/8", "fd20::4001:0:0", "2001:db8::4001:40:0/112", "fd00::/8"},
		{"pod range missing the pods", "fd20::4001:0:0", "fd20::4001:41:0/112", "does not hold"},
		{"pod range too small", "fd20::4001:0:0", "fd20::4001:40:100/124", "does not hold"},
	} {
		n := base
		n.IPv6, n.PodCIDRv6 = tc.ipv6, tc.podCIDRv6
		if err := n.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	n := base
	n.IPv6, n.PodCIDRv6 = "fd20::4001:0:0", "fd20::4001:0:0/104" // any range holding the pods
	if err := n.validate(); err != nil {
		t.Errorf("a /104 holding the pods: %v", err)
	}
}

// TestDualStackNodesAndPods runs dual-stack nodes against a dual-stack fakegce: nodes get both
// pod CIDRs and InternalIPs, instances the IPv6 range, pods both IPs; the pod's dual-stack NEG
// endpoint validates and its IPv6 address answers through an IPV6_ONLY load balancer.
func TestDualStackNodesAndPods(t *testing.T) {
	ctx := context.Background()
	const zone = "us-central1-a"
	gce, base := fakegce.NewTestServer(t, fakegce.Config{Project: "proj", Zones: []string{zone}, HealthMode: fakegce.HealthModeProbe,
		DefaultStackType: fakegce.StackDual})
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	client := newFakeClient()
	startSim(t, client, Config{Project: "proj", Nodes: isolatedNodes(zone), Compute: svc, Serve: true, MaxGrace: -1, DualStack: true})
	if _, err := client.CoreV1().Pods("ns").Create(ctx, servedPod("p", 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod ready", func() (bool, string) {
		p := getPod(t, client, "p")
		return p != nil && podReady(p) == corev1.ConditionTrue, ""
	})
	pod := getPod(t, client, "p")
	node, err := client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(node.Spec.PodCIDRs, node.Status.Addresses); got != "[10.201.1.0/24 fd20::c901:c9:0/112] [{InternalIP 10.1.0.1} {InternalIP fd20::c901:0:0} {Hostname node-us-central1-a-0}]" {
		t.Errorf("node: %s", got)
	}
	v4 := pod.Status.PodIP // 10.201.1.C
	v6 := fmt.Sprintf("fd20::c901:c9:1%02x", netip.MustParseAddr(v4).As4()[3])
	if got := fmt.Sprint(pod.Status.PodIPs, pod.Status.HostIPs); got != fmt.Sprintf("[{%s} {%s}] [{10.1.0.1} {fd20::c901:0:0}]", v4, v6) {
		t.Errorf("pod IPs: %s", got)
	}
	inst, err := svc.Instances.Get("proj", zone, node.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	if nic := inst.NetworkInterfaces[0]; nic.StackType != "IPV4_IPV6" || nic.Ipv6Address != "fd20::c901:0:0" || nic.InternalIpv6PrefixLength != 96 || len(nic.AliasIpv6Ranges) != 0 {
		t.Errorf("instance NIC: %+v", nic)
	}

	do := func(op *compute.Operation, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := waitZoneOpOrGlobal(ctx, svc, op); err != nil {
			t.Fatal(err)
		}
	}
	do(svc.NetworkEndpointGroups.Insert("proj", zone, &compute.NetworkEndpointGroup{Name: "web", NetworkEndpointType: "GCE_VM_IP_PORT", DefaultPort: 8080}).Do())
	do(svc.NetworkEndpointGroups.AttachNetworkEndpoints("proj", zone, "web", &compute.NetworkEndpointGroupsAttachEndpointsRequest{
		NetworkEndpoints: []*compute.NetworkEndpoint{{Instance: node.Name, IpAddress: v4, Ipv6Address: v6, Port: 8080}}}).Do())
	do(svc.HealthChecks.Insert("proj", &compute.HealthCheck{Name: "hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1,
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/ready"}}).Do())
	do(svc.BackendServices.Insert("proj", &compute.BackendService{Name: "bs", HealthChecks: []string{"hc"}, LoadBalancingScheme: "EXTERNAL_MANAGED",
		IpAddressSelectionPolicy: "IPV6_ONLY", Backends: []*compute.Backend{{BalancingMode: "RATE", MaxRatePerEndpoint: 1,
			Group: "https://www.googleapis.com/compute/v1/projects/proj/zones/" + zone + "/networkEndpointGroups/web"}}}).Do())
	addr, err := gce.AddFrontend("", "bs", "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod answers on its IPv6 address", func() (bool, string) {
		a := get("http://" + addr + "/")
		return a.code == 200 && a.body == "p", fmt.Sprint(a)
	})
	if st, _ := gce.Frontend(addr); st.Endpoints["["+v6+"]:8080"] == 0 {
		t.Errorf("requests per address %v, want some to [%s]:8080", st.Endpoints, v6)
	}
}

// TestDualStackNeedsDualStackSubnetwork: dual-stack nodes against an IPv4-only fakegce fail
// with GCE's refusal, not silently single-stack.
func TestDualStackNeedsDualStackSubnetwork(t *testing.T) {
	ctx := context.Background()
	_, base := fakegce.NewTestServer(t, fakegce.Config{Project: "proj", Zones: []string{"us-central1-a"}})
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = Run(ctx, newFakeClient(), Config{Project: "proj", Nodes: isolatedNodes("us-central1-a"), Compute: svc, DualStack: true})
	if err == nil || !strings.Contains(err.Error(), "stack type IPV4_ONLY") {
		t.Errorf("Run = %v, want the subnetwork's stack type refused", err)
	}
}
