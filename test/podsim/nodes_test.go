package podsim

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestAddRemoveNodeWithCompute(t *testing.T) {
	ctx := context.Background()
	_, base := fakegce.NewTestServer(t, fakegce.Config{
		Project: "proj", Zones: []string{"us-central1-a", "us-central1-f"}, OperationLatency: 50 * time.Millisecond,
	})
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	client := newFakeClient()
	n := NodeSpec{Name: "node-us-central1-f-0", Zone: "us-central1-f", PodCIDR: "10.64.200.0/24", IP: "10.1.0.200"}
	for range 2 { // idempotent
		if err := AddNode(ctx, client, svc, "proj", n); err != nil {
			t.Fatal(err)
		}
	}
	inst, err := svc.Instances.Get("proj", n.Zone, n.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	nic := inst.NetworkInterfaces[0]
	if nic.NetworkIP != n.IP || len(nic.AliasIpRanges) != 1 || nic.AliasIpRanges[0].IpCidrRange != n.PodCIDR {
		t.Errorf("instance nic = %+v", nic)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil || !nodeReady(node) {
		t.Fatalf("node = %+v, %v", node, err)
	}

	if err := SetNodeReady(ctx, client, n.Name, false); err != nil {
		t.Fatal(err)
	}
	node, _ = client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if nodeReady(node) {
		t.Error("node still Ready after SetNodeReady(false)")
	}

	for range 2 { // idempotent
		if err := RemoveNode(ctx, client, svc, "proj", n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Instances.Get("proj", n.Zone, n.Name).Do(); !isHTTP(err, 404) {
		t.Errorf("instance after RemoveNode: %v", err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err == nil {
		t.Error("node still exists")
	}
}

func TestDefaultNodeAddresses(t *testing.T) {
	for _, tc := range []struct {
		n        int
		cidr, ip string
	}{
		{1, "10.64.1.0/24", "10.1.0.1"},
		{254, "10.64.254.0/24", "10.1.0.254"}, // the plan before it went past 254 nodes, unchanged
		{255, "10.65.1.0/24", "10.1.1.1"},
		{508, "10.65.254.0/24", "10.1.1.254"},
		{509, "10.66.1.0/24", "10.1.2.1"},
		{MaxDefaultNodes, "10.69.254.0/24", "10.1.5.254"},
	} {
		cidr, ip := DefaultNodeAddresses(tc.n)
		if cidr != tc.cidr || ip != tc.ip {
			t.Errorf("DefaultNodeAddresses(%d) = %s, %s; want %s, %s", tc.n, cidr, ip, tc.cidr, tc.ip)
		}
	}
}

// TestDefaultNodeAddressesPlan checks every node of the plan: distinct pod ranges and node IPs,
// a valid NodeSpec, clear of a peer's default ranges and the Service range, and pod IPs that
// fakegce.LoopbackFor reaches at 127.<second>.<third>.<host> of the pod IP.
func TestDefaultNodeAddressesPlan(t *testing.T) {
	reserved := []netip.Prefix{
		netip.MustParsePrefix("10.70.0.0/16"), // stack.Peer's pod ranges (default PodCIDRBase)
		netip.MustParsePrefix("10.71.0.0/16"), // stack.Peer's node IPs
		netip.MustParsePrefix("10.96.0.0/16"), // localcluster's --service-cluster-ip-range
	}
	podRanges, nodeIPs := netip.MustParsePrefix("10.64.0.0/13"), netip.MustParsePrefix("10.1.0.0/16")
	cidrs, ips := map[netip.Prefix]int{}, map[netip.Addr]int{}
	for n := 1; n <= MaxDefaultNodes; n++ {
		cidr, ip := DefaultNodeAddresses(n)
		if err := (NodeSpec{Name: "n", Zone: "z", PodCIDR: cidr, IP: ip}).validate(); err != nil {
			t.Fatal(err)
		}
		p, a := netip.MustParsePrefix(cidr), netip.MustParseAddr(ip)
		if m, dup := cidrs[p]; dup {
			t.Fatalf("nodes %d and %d share pod CIDR %s", m, n, p)
		}
		if m, dup := ips[a]; dup {
			t.Fatalf("nodes %d and %d share IP %s", m, n, a)
		}
		cidrs[p], ips[a] = n, n
		// Pod ranges and node IPs come from disjoint ranges, so no node IP is a pod IP.
		if !podRanges.Contains(p.Addr()) || !nodeIPs.Contains(a) {
			t.Errorf("node %d: pod CIDR %s outside %s or IP %s outside %s", n, p, podRanges, a, nodeIPs)
		}
		for _, r := range reserved {
			if r.Overlaps(p) || r.Contains(a) {
				t.Errorf("node %d (%s, %s) overlaps reserved %s", n, p, a, r)
			}
		}
		pool, err := newPool(cidr)
		if err != nil {
			t.Fatal(err)
		}
		for _, pod := range []netip.Addr{pool.first, pool.last} {
			lb, ok := fakegce.LoopbackFor(pod.String())
			want := pod.As4()
			want[0] = 127
			if !ok || lb != netip.AddrFrom4(want).String() {
				t.Fatalf("node %d: LoopbackFor(%s) = %q, %v; want %s", n, pod, lb, ok, netip.AddrFrom4(want))
			}
		}
	}
}

func TestDefaultNodesOutsidePlanPanics(t *testing.T) {
	for _, fn := range []func(){
		func() { DefaultNodeAddresses(0) },
		func() { DefaultNodeAddresses(MaxDefaultNodes + 1) },
		func() { DefaultNodes([]string{"a", "b", "c"}, MaxDefaultNodes/3+1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic outside the address plan")
				}
			}()
			fn()
		}()
	}
}

// TestAddNodesPast254 registers 300 nodes (more than the plan held before) without Compute.
func TestAddNodesPast254(t *testing.T) {
	ctx := context.Background()
	client := newFakeClient()
	nodes := DefaultNodes([]string{"z-a", "z-b", "z-c"}, 100)
	if err := addNodes(ctx, client, Config{Project: "p", Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 300 {
		t.Fatalf("got %d nodes, want 300", len(list.Items))
	}
	last, err := client.CoreV1().Nodes().Get(ctx, "node-z-c-99", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Node 300: i = 299, hi = 1, lo = 46.
	if last.Spec.PodCIDR != "10.65.46.0/24" || internalIP(last) != "10.1.1.46" || !nodeReady(last) {
		t.Errorf("node 300: podCIDR %s, IP %s, ready %v", last.Spec.PodCIDR, internalIP(last), nodeReady(last))
	}
}

// An External node (a cluster outside Google Cloud) gets only its zone labels: no instance, no
// providerID, the region label of the other cloud's zone.
func TestAddRemoveExternalNode(t *testing.T) {
	ctx := context.Background()
	_, base := fakegce.NewTestServer(t, fakegce.Config{Project: "proj", Zones: []string{"us-central1-a"}})
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	client := newFakeClient()
	n := NodeSpec{Name: "node-eu-west-1a-0", Zone: "eu-west-1a", PodCIDR: "10.64.1.0/24", IP: "10.1.0.1", External: true}
	if err := AddNode(ctx, client, svc, "proj", n); err != nil {
		t.Fatal(err)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil || !nodeReady(node) {
		t.Fatalf("node = %+v, %v", node, err)
	}
	if node.Spec.ProviderID != "" || node.Labels["topology.kubernetes.io/zone"] != "eu-west-1a" ||
		node.Labels["topology.kubernetes.io/region"] != "eu-west-1" {
		t.Errorf("providerID %q, labels %v", node.Spec.ProviderID, node.Labels)
	}
	list, err := svc.Instances.AggregatedList("proj").Do()
	if err != nil {
		t.Fatal(err)
	}
	for scope, l := range list.Items {
		if len(l.Instances) > 0 {
			t.Errorf("instances in %s: %d, want none", scope, len(l.Instances))
		}
	}
	if err := RemoveNode(ctx, client, svc, "proj", n); err != nil {
		t.Fatal(err)
	}
}
