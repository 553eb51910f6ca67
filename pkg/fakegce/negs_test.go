package fakegce_test

import (
	"fmt"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestNEGLifecycle(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	op, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{
		Name: "web", NetworkEndpointType: "GCE_VM_IP_PORT", Description: `{"cluster-uid":"x"}`,
		Network: "global/networks/default", Subnetwork: "regions/us-central1/subnetworks/default"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != "DONE" || op.Zone != linkPfx+"zones/"+zoneA || op.TargetLink != negURL(zoneA, "web") ||
		op.OperationType != "insert" || !strings.HasPrefix(op.SelfLink, linkPfx+"zones/"+zoneA+"/operations/operation-") {
		t.Errorf("op = %+v", op)
	}
	n, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do()
	if err != nil {
		t.Fatal(err)
	}
	want := compute.NetworkEndpointGroup{
		Kind: "compute#networkEndpointGroup", Name: "web", NetworkEndpointType: "GCE_VM_IP_PORT",
		Description: `{"cluster-uid":"x"}`, Network: linkPfx + "global/networks/default",
		Subnetwork: linkPfx + "regions/us-central1/subnetworks/default", Zone: linkPfx + "zones/" + zoneA,
		SelfLink: negURL(zoneA, "web"), Size: 0,
	}
	if n.Kind != want.Kind || n.Name != want.Name || n.NetworkEndpointType != want.NetworkEndpointType ||
		n.Description != want.Description || n.Network != want.Network || n.Subnetwork != want.Subnetwork ||
		n.Zone != want.Zone || n.SelfLink != want.SelfLink || n.Size != 0 || n.Id == 0 || n.CreationTimestamp == "" {
		t.Errorf("got %+v\nwant %+v", n, want)
	}
	if op.TargetId != n.Id {
		t.Errorf("targetId %d != id %d", op.TargetId, n.Id)
	}

	_, err = e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	ge := wantAPIError(t, err, 409, "alreadyExists")
	if ge.Message != "The resource 'projects/test-project/zones/us-central1-a/networkEndpointGroups/web' already exists" {
		t.Errorf("message = %q", ge.Message)
	}
	e.must(e.svc.NetworkEndpointGroups.Delete(project, zoneA, "web").Do())
	_, err = e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do()
	ge = wantAPIError(t, err, 404, "notFound")
	if ge.Message != "The resource 'projects/test-project/zones/us-central1-a/networkEndpointGroups/web' was not found" {
		t.Errorf("message = %q", ge.Message)
	}
	_, err = e.svc.NetworkEndpointGroups.Delete(project, zoneA, "web").Do()
	wantAPIError(t, err, 404, "notFound")
}

func TestNEGInsertValidation(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	long := strings.Repeat("a", 64)
	tests := []struct {
		name   string
		neg    compute.NetworkEndpointGroup
		code   int
		reason string
	}{
		{"uppercase", compute.NetworkEndpointGroup{Name: "Web"}, 400, "invalid"},
		{"leading digit", compute.NetworkEndpointGroup{Name: "1web"}, 400, "invalid"},
		{"trailing dash", compute.NetworkEndpointGroup{Name: "web-"}, 400, "invalid"},
		{"64 chars", compute.NetworkEndpointGroup{Name: long}, 400, "invalid"},
		{"empty", compute.NetworkEndpointGroup{Name: ""}, 400, "invalid"},
		{"bad type", compute.NetworkEndpointGroup{Name: "a", NetworkEndpointType: "NOPE"}, 400, "invalid"},
		{"serverless", compute.NetworkEndpointGroup{Name: "a", NetworkEndpointType: "SERVERLESS"}, 400, "invalid"},
		{"missing network", compute.NetworkEndpointGroup{Name: "a", Network: "global/networks/nope"}, 404, "notFound"},
		{"missing subnetwork", compute.NetworkEndpointGroup{Name: "a", Subnetwork: "regions/us-central1/subnetworks/nope"}, 404, "notFound"},
		{"other project network", compute.NetworkEndpointGroup{Name: "a", Network: "projects/other/global/networks/default"}, 400, "invalid"},
		{"port too big", compute.NetworkEndpointGroup{Name: "a", DefaultPort: 70000}, 400, "invalid"},
		{"GCE_VM_IP with port", compute.NetworkEndpointGroup{Name: "a", NetworkEndpointType: "GCE_VM_IP", DefaultPort: 80}, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &tc.neg).Do()
			wantAPIError(t, err, tc.code, tc.reason)
		})
	}
	// 63 characters and every accepted type are fine; full URLs are accepted for the network.
	for i, typ := range []string{"GCE_VM_IP_PORT", "NON_GCP_PRIVATE_IP_PORT", "GCE_VM_IP", ""} {
		name := fmt.Sprintf("%s%d", long[:62], i)
		e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{
			Name: name, NetworkEndpointType: typ, Network: linkPfx + "global/networks/default"}).Do())
	}
	n, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, long[:62]+"3").Do()
	if err != nil || n.NetworkEndpointType != "GCE_VM_IP_PORT" {
		t.Errorf("default type: %+v %v", n, err)
	}
}

func TestNEGListPaging(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	for i := 0; i < 7; i++ {
		e.insertNEG(zoneA, fmt.Sprintf("neg-%d", i))
	}
	e.insertNEG(zoneB, "other")
	first, err := e.svc.NetworkEndpointGroups.List(project, zoneA).MaxResults(3).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 3 || first.NextPageToken == "" || first.Items[0].Name != "neg-0" {
		t.Fatalf("first page = %d items, token %q", len(first.Items), first.NextPageToken)
	}
	var names []string
	pages := 0
	err = e.svc.NetworkEndpointGroups.List(project, zoneA).MaxResults(3).Pages(e.ctx, func(l *compute.NetworkEndpointGroupList) error {
		pages++
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 3 || strings.Join(names, ",") != "neg-0,neg-1,neg-2,neg-3,neg-4,neg-5,neg-6" {
		t.Errorf("pages %d names %v", pages, names)
	}
	_, err = e.svc.NetworkEndpointGroups.List(project, zoneA).MaxResults(501).Do()
	wantAPIError(t, err, 400, "invalid")
	_, err = e.svc.NetworkEndpointGroups.List(project, zoneA).PageToken("garbage").Do()
	wantAPIError(t, err, 400, "invalid")
	_, err = e.svc.NetworkEndpointGroups.List(project, zoneA).Filter(`name = "neg-1"`).Do()
	wantAPIError(t, err, 400, "invalid")
}

func TestNEGAggregatedList(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.insertNEG(zoneA, "a1")
	e.insertNEG(zoneA, "a2")
	e.insertNEG(zoneB, "b1")
	l, err := e.svc.NetworkEndpointGroups.AggregatedList(project).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Items["zones/"+zoneA].NetworkEndpointGroups); got != 2 {
		t.Errorf("zone a: %d NEGs", got)
	}
	if got := l.Items["zones/"+zoneB].NetworkEndpointGroups; len(got) != 1 || got[0].Name != "b1" {
		t.Errorf("zone b: %+v", got)
	}
	for _, sc := range []string{"zones/" + zoneC, "regions/" + region, "global"} {
		w := l.Items[sc].Warning
		if w == nil || w.Code != "NO_RESULTS_ON_PAGE" || len(w.Data) != 1 || w.Data[0].Key != "scope" || w.Data[0].Value != sc ||
			w.Message != "There are no results for scope '"+sc+"' on this page." {
			t.Errorf("scope %s: warning %+v", sc, w)
		}
	}
	// Paging across scopes: one NEG per page.
	var got []string
	err = e.svc.NetworkEndpointGroups.AggregatedList(project).MaxResults(1).Pages(e.ctx, func(l *compute.NetworkEndpointGroupAggregatedList) error {
		for sc, items := range l.Items {
			for _, n := range items.NetworkEndpointGroups {
				got = append(got, sc+"/"+n.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "zones/us-central1-a/a1,zones/us-central1-a/a2,zones/us-central1-b/b1" {
		t.Errorf("paged aggregated list = %v", got)
	}
}
