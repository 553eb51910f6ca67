package fakegce_test

import (
	"net/http"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestUnknownPathsAreLoud404s(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	for _, path := range []string{
		"/",
		"/projects/test-project/zones/us-central1-a/networkEndpointGroups/x",
		"/compute/projects/test-project/zones",
		"/compute/beta/projects/test-project/zones",
		"/compute/v1/projects/test-project/zones/us-central1-a/frobnicators",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := httpDo(t, http.MethodGet, e.base+path, "", nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, path) || !strings.Contains(body, "notFound") {
				t.Errorf("GET %s = %d %s, want a 404 naming the path", path, resp.StatusCode, body)
			}
		})
	}
	if got := e.s.Counts()["fakegce.unknownPath"]; got != 5 {
		t.Errorf("unknownPath count = %d, want 5", got)
	}
}

func TestMisconfiguredEndpointFailsLoudly(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	// Without the trailing slash the client drops "v1" (gce-api.md §1.2).
	svc, err := compute.NewService(e.ctx, option.WithEndpoint(e.base+"/compute/v1"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Zones.List(project).Do()
	ge := wantAPIError(t, err, 404, "notFound")
	if !strings.Contains(ge.Message, "/compute/projects/test-project/zones") {
		t.Errorf("message %q does not name the path", ge.Message)
	}
}

func TestUnknownProjectZoneRegion(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	tests := []struct {
		name string
		call func() error
	}{
		{"project", func() error { _, err := e.svc.Zones.List("other-project").Do(); return err }},
		{"zone", func() error { _, err := e.svc.NetworkEndpointGroups.List(project, "europe-west1-b").Do(); return err }},
		{"region", func() error { _, err := e.svc.RegionBackendServices.List(project, "europe-west1").Do(); return err }},
		{"neg", func() error { _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "nope").Do(); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, tc.call(), 404, "notFound") })
	}
}

func TestZonesRegionsNetworks(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	zones, err := e.svc.Zones.List(project).Do()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, z := range zones.Items {
		names = append(names, z.Name)
		if z.Status != "UP" || z.Region != linkPfx+"regions/"+region || z.SelfLink != linkPfx+"zones/"+z.Name {
			t.Errorf("zone %+v", z)
		}
	}
	if strings.Join(names, ",") != zoneA+","+zoneB+","+zoneC {
		t.Errorf("zones = %v", names)
	}
	if z, err := e.svc.Zones.Get(project, zoneB).Do(); err != nil || z.Name != zoneB {
		t.Errorf("zones.get = %v, %v", z, err)
	}
	r, err := e.svc.Regions.Get(project, region).Do()
	if err != nil || len(r.Zones) != 3 {
		t.Fatalf("regions.get = %+v, %v", r, err)
	}
	n, err := e.svc.Networks.Get(project, "default").Do()
	if err != nil || n.SelfLink != linkPfx+"global/networks/default" || len(n.Subnetworks) != 1 {
		t.Fatalf("networks.get default = %+v, %v", n, err)
	}
	sn, err := e.svc.Subnetworks.Get(project, region, "default").Do()
	if err != nil || sn.Network != n.SelfLink || sn.IpCidrRange == "" {
		t.Fatalf("subnetworks.get default = %+v, %v", sn, err)
	}

	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "vpc", ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	op := e.must(e.svc.Subnetworks.Insert(project, region, &compute.Subnetwork{
		Name: "nodes", Network: "global/networks/vpc", IpCidrRange: "10.10.0.0/24"}).Do())
	if op.Region != linkPfx+"regions/"+region || op.TargetLink != linkPfx+"regions/"+region+"/subnetworks/nodes" {
		t.Errorf("subnetwork op = %+v", op)
	}
	_, err = e.svc.Subnetworks.Insert(project, region, &compute.Subnetwork{
		Name: "nodes", Network: "global/networks/vpc", IpCidrRange: "10.10.0.0/24"}).Do()
	wantAPIError(t, err, 409, "alreadyExists")
	nets, err := e.svc.Networks.List(project).Do()
	if err != nil || len(nets.Items) != 2 {
		t.Fatalf("networks.list = %+v, %v", nets, err)
	}
	subs, err := e.svc.Subnetworks.List(project, region).Do()
	if err != nil || len(subs.Items) != 2 {
		t.Fatalf("subnetworks.list = %+v, %v", subs, err)
	}
}

func TestInstances(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.10", "10.4.1.0/24")
	op := e.must(e.svc.Instances.Insert(project, zoneA, &compute.Instance{
		Name: "node-2",
		NetworkInterfaces: []*compute.NetworkInterface{{
			Network:       linkPfx + "global/networks/default",
			AliasIpRanges: []*compute.AliasIpRange{{IpCidrRange: "10.4.2.0/24", SubnetworkRangeName: "pods"}},
		}},
	}).Do())
	if op.Zone != linkPfx+"zones/"+zoneA || op.OperationType != "insert" {
		t.Errorf("op = %+v", op)
	}
	e.must(e.svc.Instances.Insert(project, zoneB, &compute.Instance{Name: "node-3"}).Do())
	in, err := e.svc.Instances.Get(project, zoneA, "node-2").Do()
	if err != nil {
		t.Fatal(err)
	}
	ni := in.NetworkInterfaces[0]
	if ni.NetworkIP == "" || ni.NetworkIP == "10.128.0.10" || ni.Network != linkPfx+"global/networks/default" ||
		ni.Subnetwork != linkPfx+"regions/"+region+"/subnetworks/default" || ni.AliasIpRanges[0].IpCidrRange != "10.4.2.0/24" {
		t.Errorf("interface = %+v", ni)
	}
	if in.Status != "RUNNING" || in.SelfLink != linkPfx+"zones/"+zoneA+"/instances/node-2" {
		t.Errorf("instance = %+v", in)
	}
	_, err = e.svc.Instances.Insert(project, zoneA, &compute.Instance{Name: "node-1"}).Do()
	wantAPIError(t, err, 409, "alreadyExists")
	_, err = e.svc.Instances.Insert(project, zoneA, &compute.Instance{Name: "Bad_Name"}).Do()
	wantAPIError(t, err, 400, "invalid")

	l, err := e.svc.Instances.List(project, zoneA).Do()
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("list = %+v, %v", l, err)
	}
	agg, err := e.svc.Instances.AggregatedList(project).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Items["zones/"+zoneA].Instances) != 2 || len(agg.Items["zones/"+zoneB].Instances) != 1 ||
		agg.Items["zones/"+zoneC].Warning == nil || agg.Items["zones/"+zoneC].Warning.Code != "NO_RESULTS_ON_PAGE" {
		t.Errorf("aggregated = %+v", agg.Items)
	}
	e.must(e.svc.Instances.Delete(project, zoneA, "node-2").Do())
	_, err = e.svc.Instances.Get(project, zoneA, "node-2").Do()
	wantAPIError(t, err, 404, "notFound")
}
