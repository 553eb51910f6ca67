package podsim

import (
	"context"
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
