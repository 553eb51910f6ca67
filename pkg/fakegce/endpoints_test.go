package fakegce_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestAttachDetachList(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.addInstance(zoneA, "node-2", "10.128.0.12", "10.4.2.0/24")
	e.insertNEG(zoneA, "web")
	e.attach(zoneA, "web",
		ep("node-1", "10.4.1.7", 8080),
		ep(linkPfx+"zones/"+zoneA+"/instances/node-2", "10.4.2.9", 8080), // full URL
		ep("zones/"+zoneA+"/instances/node-2", "10.4.2.10", 0),           // partial URL, defaultPort
		ep("node-1", "", 9090),                                           // IP omitted: primary IP
	)
	want := []neg.Endpoint{
		{Instance: "node-1", IP: "10.128.0.11", Port: 9090},
		{Instance: "node-1", IP: "10.4.1.7", Port: 8080},
		{Instance: "node-2", IP: "10.4.2.10", Port: 80},
		{Instance: "node-2", IP: "10.4.2.9", Port: 8080},
	}
	got, ok := e.s.NEGEndpoints(zoneA, "web")
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("NEGEndpoints = %v, %v\nwant %v", got, ok, want)
	}
	items := e.listAll(zoneA, "web", "SKIP", 0)
	var listed []neg.Endpoint
	for _, it := range items {
		ne := it.NetworkEndpoint
		listed = append(listed, neg.Endpoint{Instance: ne.Instance, IP: ne.IpAddress, Port: ne.Port})
		if it.Healths != nil {
			t.Errorf("healths present with SKIP: %+v", it.Healths)
		}
	}
	if !reflect.DeepEqual(listed, want) {
		t.Errorf("listed %v, want %v (instances as short names)", listed, want)
	}
	if n, _ := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); n.Size != 4 {
		t.Errorf("size = %d, want 4", n.Size)
	}
	// Attaching again is a no-op; detaching an absent endpoint too.
	e.attach(zoneA, "web", ep("node-1", "10.4.1.7", 8080))
	e.must(e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web", &compute.NetworkEndpointGroupsDetachEndpointsRequest{
		NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 8080), ep("node-1", "10.4.1.99", 1)}}).Do())
	if n, _ := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); n.Size != 3 {
		t.Errorf("size after detach = %d, want 3", n.Size)
	}
	// Deleting a non-empty NEG is allowed.
	e.must(e.svc.NetworkEndpointGroups.Delete(project, zoneA, "web").Do())
	if _, ok := e.s.NEGEndpoints(zoneA, "web"); ok {
		t.Error("NEG still there")
	}
}

func TestAttachValidation(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.addInstance(zoneB, "node-b", "10.128.0.21", "10.4.9.0/24")
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "other", AutoCreateSubnetworks: true}).Do())
	if err := e.s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "node-other", IP: "10.128.0.31", AliasCIDRs: []string{"10.5.0.0/24"}, Network: "global/networks/other"}); err != nil {
		t.Fatal(err)
	}
	e.insertNEG(zoneA, "web")
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "noport", NetworkEndpointType: "GCE_VM_IP_PORT"}).Do())
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "hybrid", NetworkEndpointType: "NON_GCP_PRIVATE_IP_PORT", DefaultPort: 443}).Do())
	many := make([]*compute.NetworkEndpoint, 501)
	for i := range many {
		many[i] = ep("node-1", fmt.Sprintf("10.4.1.%d", i%250+1), int64(1000+i))
	}
	tests := []struct {
		name    string
		neg     string
		eps     []*compute.NetworkEndpoint
		message string // substring; "" = any
	}{
		{"IP not on instance", "web", []*compute.NetworkEndpoint{ep("node-1", "10.0.0.13", 80)},
			"Invalid value for field 'resource.ipAddress': '10.0.0.13'. Specified IP address 10.0.0.13 doesn't belong to the (sub)network default or to the instance node-1."},
		{"unknown instance", "web", []*compute.NetworkEndpoint{ep("ghost", "10.4.1.7", 80)}, "ghost"},
		{"instance in other zone by name", "web", []*compute.NetworkEndpoint{ep("node-b", "10.4.9.7", 80)}, "zone us-central1-b"},
		{"instance in other zone by URL", "web", []*compute.NetworkEndpoint{ep(linkPfx+"zones/"+zoneB+"/instances/node-b", "10.4.9.7", 80)}, "zone us-central1-b"},
		{"instance in other network", "web", []*compute.NetworkEndpoint{ep("node-other", "10.5.0.7", 80)}, "doesn't belong to the (sub)network default"},
		{"no instance", "web", []*compute.NetworkEndpoint{ep("", "10.4.1.7", 80)}, "instance"},
		{"not IPv4", "web", []*compute.NetworkEndpoint{ep("node-1", "fd00::1", 80)}, "ipAddress"},
		{"no port and no default", "noport", []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 0)}, "Port"},
		{"port out of range", "web", []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 65536)}, "port"},
		{"too many", "web", many, "At most 500"},
		{"hybrid with instance", "hybrid", []*compute.NetworkEndpoint{ep("node-1", "192.168.1.1", 80)}, "instance"},
		{"hybrid without IP", "hybrid", []*compute.NetworkEndpoint{ep("", "", 80)}, "IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, tc.neg,
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: tc.eps}).Do()
			ge := wantAPIError(t, err, 400, "invalid")
			if !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.message)
			}
		})
	}
	if got, _ := e.s.NEGEndpoints(zoneA, "web"); len(got) != 0 {
		t.Errorf("failed calls attached %v", got)
	}
	// A valid batch of exactly 500 and a hybrid endpoint without instance are accepted.
	e.attach(zoneA, "web", many[:500]...)
	e.attach(zoneA, "hybrid", ep("", "192.168.1.1", 0))
	if got, _ := e.s.NEGEndpoints(zoneA, "hybrid"); len(got) != 1 || got[0] != (neg.Endpoint{IP: "192.168.1.1", Port: 443}) {
		t.Errorf("hybrid endpoints = %v", got)
	}
	_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "missing",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: many[:1]}).Do()
	wantAPIError(t, err, 404, "notFound")
}

func TestStrictEndpointOps(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			e := newEnv(t, fakegce.Config{StrictEndpointOps: strict})
			e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
			e.insertNEG(zoneA, "web")
			e.attach(zoneA, "web", ep("node-1", "10.4.1.7", 80))
			_, err1 := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).Do()
			_, err2 := e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web",
				&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.8", 80)}}).Do()
			if strict {
				wantAPIError(t, err1, 400, "invalid")
				wantAPIError(t, err2, 400, "invalid")
			} else if err1 != nil || err2 != nil {
				t.Errorf("non-strict: %v, %v", err1, err2)
			}
		})
	}
}

func TestNEGCapacity(t *testing.T) {
	e := newEnv(t, fakegce.Config{MaxEndpointsPerNEG: 5})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertNEG(zoneA, "web")
	var eps []*compute.NetworkEndpoint
	for i := 1; i <= 6; i++ {
		eps = append(eps, ep("node-1", fmt.Sprintf("10.4.1.%d", i), 80))
	}
	e.attach(zoneA, "web", eps[:5]...)
	e.attach(zoneA, "web", eps[0]) // already there: does not count
	_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: eps[5:]}).Do()
	ge := wantAPIError(t, err, 400, "invalid")
	if !strings.Contains(ge.Message, "maximum number of network endpoints (5)") {
		t.Errorf("message = %q", ge.Message)
	}
}

func TestListNetworkEndpointsPaging(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.0.0/16")
	e.insertNEG(zoneA, "web")
	var all []*compute.NetworkEndpoint
	for i := 0; i < 1200; i++ {
		all = append(all, ep("node-1", fmt.Sprintf("10.4.%d.%d", i/200, i%200+1), 8080))
	}
	for i := 0; i < len(all); i += 500 {
		e.attach(zoneA, "web", all[i:min(i+500, len(all))]...)
	}
	page, err := e.svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsListEndpointsRequest{}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 500 || page.NextPageToken == "" {
		t.Fatalf("default page: %d items, token %q", len(page.Items), page.NextPageToken)
	}
	// Changes between pages: an endpoint before the cursor is added, one after it is removed.
	e.attach(zoneA, "web", ep("node-1", "10.4.0.0", 8080))
	e.must(e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web", &compute.NetworkEndpointGroupsDetachEndpointsRequest{
		NetworkEndpoints: []*compute.NetworkEndpoint{all[1199]}}).Do())
	seen := map[string]bool{}
	for _, it := range page.Items {
		seen[it.NetworkEndpoint.IpAddress] = true
	}
	tok := page.NextPageToken
	for tok != "" {
		p, err := e.svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "web",
			&compute.NetworkEndpointGroupsListEndpointsRequest{}).PageToken(tok).Do()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			if seen[it.NetworkEndpoint.IpAddress] {
				t.Fatalf("duplicate %s", it.NetworkEndpoint.IpAddress)
			}
			seen[it.NetworkEndpoint.IpAddress] = true
		}
		tok = p.NextPageToken
	}
	if len(seen) != 1199 || seen[all[1199].IpAddress] || seen["10.4.0.0"] {
		t.Errorf("saw %d endpoints", len(seen))
	}
	if got := e.listAll(zoneA, "web", "", 7); len(got) != 1200 {
		t.Errorf("small pages: %d endpoints", len(got))
	}
	_, err = e.svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: "MAYBE"}).Do()
	wantAPIError(t, err, 400, "invalid")
}

func TestInstanceDeleteDetachesEndpoints(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.addInstance(zoneA, "node-2", "10.128.0.12", "10.4.2.0/24")
	e.insertNEG(zoneA, "web")
	e.attach(zoneA, "web", ep("node-1", "10.4.1.7", 80), ep("node-2", "10.4.2.7", 80))
	e.must(e.svc.Instances.Delete(project, zoneA, "node-1").Do())
	got, _ := e.s.NEGEndpoints(zoneA, "web")
	if len(got) != 1 || got[0].Instance != "node-2" {
		t.Errorf("endpoints = %v", got)
	}
}

// TestConcurrentClients runs 100 clients against one emulator (run with -race).
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.0.0.0/8")
	for i := 0; i < 10; i++ {
		e.insertNEG(zoneA, fmt.Sprintf("neg-%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for c := 0; c < 100; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			negName := fmt.Sprintf("neg-%d", c%10)
			var eps []*compute.NetworkEndpoint
			for i := 0; i < 20; i++ {
				eps = append(eps, ep("node-1", fmt.Sprintf("10.%d.%d.1", c, i), 80))
			}
			op, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, negName,
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: eps}).Do()
			if err == nil {
				_, err = e.svc.ZoneOperations.Wait(project, zoneA, op.Name).Do()
			}
			if err == nil {
				_, err = e.svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, negName,
					&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: "SHOW"}).MaxResults(50).Do()
			}
			if err == nil {
				_, err = e.svc.NetworkEndpointGroups.AggregatedList(project).Do()
			}
			if err == nil && c%2 == 0 {
				op, err = e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, negName,
					&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: eps[:10]}).Do()
				if err == nil {
					_, err = e.svc.ZoneOperations.Wait(project, zoneA, op.Name).Do()
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	total := 0
	for i := 0; i < 10; i++ {
		n, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, fmt.Sprintf("neg-%d", i)).Do()
		if err != nil {
			t.Fatal(err)
		}
		total += int(n.Size)
		if got := len(e.listAll(zoneA, n.Name, "SKIP", 33)); int64(got) != n.Size {
			t.Errorf("%s: listed %d, size %d", n.Name, got, n.Size)
		}
	}
	if total != 100*20-50*10 {
		t.Errorf("total endpoints %d, want %d", total, 100*20-50*10)
	}
}
