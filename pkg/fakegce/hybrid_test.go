package fakegce_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const hybridType = "NON_GCP_PRIVATE_IP_PORT"

// insertHybrid creates a NON_GCP_PRIVATE_IP_PORT NEG in the default network, as the hybrid NEG
// guides do (--network, no --subnet).
func (e *env) insertHybrid(zone, name string) {
	e.t.Helper()
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zone, &compute.NetworkEndpointGroup{
		Name: name, NetworkEndpointType: hybridType, Network: "global/networks/default"}).Do())
}

func hybridBackend(zone, name string) *compute.Backend {
	return &compute.Backend{Group: negURL(zone, name), BalancingMode: "RATE", MaxRatePerEndpoint: 100}
}

// TestHybridNEGInsert: one row per insert rule of NON_GCP_PRIVATE_IP_PORT NEGs.
func TestHybridNEGInsert(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	tests := []struct {
		name    string
		neg     compute.NetworkEndpointGroup
		code    int    // 0 = accepted
		message string // substring of the error
	}{
		// API reference: network defaults to the default network for NON_GCP_PRIVATE_IP_PORT.
		{name: "network omitted: default network", neg: compute.NetworkEndpointGroup{}},
		{name: "network given", neg: compute.NetworkEndpointGroup{Network: linkPfx + "global/networks/default"}},
		{name: "default port allowed", neg: compute.NetworkEndpointGroup{DefaultPort: 443}},
		{name: "annotations kept", neg: compute.NetworkEndpointGroup{Annotations: map[string]string{"created-by": "someone"}}},
		{name: "unknown network", neg: compute.NetworkEndpointGroup{Network: "global/networks/nope"}, code: 404, message: "nope"},
		// Emulator's choice [unverified]: hybrid NEGs take no subnetwork.
		{name: "subnetwork refused", neg: compute.NetworkEndpointGroup{Subnetwork: "regions/us-central1/subnetworks/default"},
			code: 400, message: "Subnetwork must not be set for NON_GCP_PRIVATE_IP_PORT"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.neg.Name, tc.neg.NetworkEndpointType = fmt.Sprintf("h%d", i), hybridType
			_, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &tc.neg).Do()
			if tc.code != 0 {
				ge := wantAPIError(t, err, tc.code, map[int]string{400: "invalid", 404: "notFound"}[tc.code])
				if !strings.Contains(ge.Message, tc.message) {
					t.Errorf("message %q does not contain %q", ge.Message, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, tc.neg.Name).Do()
			if err != nil {
				t.Fatal(err)
			}
			if n.NetworkEndpointType != hybridType || n.Network != linkPfx+"global/networks/default" || n.Subnetwork != "" ||
				n.DefaultPort != tc.neg.DefaultPort || fmt.Sprint(n.Annotations) != fmt.Sprint(tc.neg.Annotations) {
				t.Errorf("stored NEG = %+v", n)
			}
		})
	}
}

// TestHybridEndpoints: one row per attach rule; then the accepted endpoints list back without
// instance, detach works by (IP, port), and an instance-less endpoint is refused by a
// GCE_VM_IP_PORT NEG.
func TestHybridEndpoints(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertHybrid(zoneA, "hybrid")
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{
		Name: "hybrid-443", NetworkEndpointType: hybridType, DefaultPort: 443}).Do())
	e.insertNEG(zoneA, "vm")
	tests := []struct {
		name    string
		neg     string
		ep      *compute.NetworkEndpoint
		message string // "" = accepted
	}{
		{"IP and port", "hybrid", ep("", "192.168.10.5", 8080), ""},
		{"any routed IPv4 (range not checked)", "hybrid", ep("", "172.31.4.9", 8080), ""},
		{"port from defaultPort", "hybrid-443", ep("", "192.168.10.5", 0), ""},
		{"instance refused, even a real one", "hybrid", ep("node-1", "10.4.1.7", 8080), "Instance must not be set"},
		{"IP required", "hybrid", ep("", "", 8080), "IP address must be specified"},
		{"IPv4 only", "hybrid", ep("", "fd00::5", 8080), "IPv4"},
		{"no IPv6 address", "hybrid", &compute.NetworkEndpoint{IpAddress: "192.168.10.6", Ipv6Address: "fd00::6", Port: 80}, "IPv6"},
		{"port required without defaultPort", "hybrid", ep("", "192.168.10.5", 0), "Port must be specified"},
		{"port range", "hybrid", ep("", "192.168.10.5", 70000), "port"},
		{"no fqdn (NON_GCP_FQDN_PORT only)", "hybrid", &compute.NetworkEndpoint{Fqdn: "a.example.com", IpAddress: "192.168.10.5", Port: 80}, "FQDN"},
		{"no client destination port (GCE_VM_IP_PORTMAP only)", "hybrid",
			&compute.NetworkEndpoint{ClientDestinationPort: 8080, IpAddress: "192.168.10.5", Port: 80}, "Client destination port"},
		{"GCE_VM_IP_PORT needs the instance", "vm", ep("", "10.4.1.7", 8080), "Instance must be specified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, tc.neg,
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{tc.ep}}).Do()
			if tc.message == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ge := wantAPIError(t, err, 400, "invalid")
			if !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.message)
			}
		})
	}
	var got []string
	for _, it := range e.listAll(zoneA, "hybrid", "SKIP", 0) {
		got = append(got, fmt.Sprintf("%q %s:%d", it.NetworkEndpoint.Instance, it.NetworkEndpoint.IpAddress, it.NetworkEndpoint.Port))
	}
	if want := `["" 172.31.4.9:8080 "" 192.168.10.5:8080]`; fmt.Sprint(got) != want {
		t.Errorf("listed %v, want %s", got, want)
	}
	e.must(e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "hybrid",
		&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("", "172.31.4.9", 8080)}}).Do())
	if eps, _ := e.s.NEGEndpoints(zoneA, "hybrid"); fmt.Sprint(eps) != "[192.168.10.5:8080]" {
		t.Errorf("after detach: %v", eps)
	}
	if n, _ := e.svc.NetworkEndpointGroups.Get(project, zoneA, "hybrid").Do(); n == nil || n.Size != 1 {
		t.Errorf("size = %+v", n)
	}
}

// TestHybridEndpointLimit: the per-NEG cap applies to hybrid NEGs too (its value for them is
// [unverified]; the emulator uses Config.MaxEndpointsPerNEG for every type).
func TestHybridEndpointLimit(t *testing.T) {
	e := newEnv(t, fakegce.Config{MaxEndpointsPerNEG: 3})
	e.insertHybrid(zoneA, "hybrid")
	e.attach(zoneA, "hybrid", ep("", "192.168.0.1", 80), ep("", "192.168.0.2", 80))
	_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "hybrid",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{
			ep("", "192.168.0.3", 80), ep("", "192.168.0.4", 80)}}).Do()
	ge := wantAPIError(t, err, 400, "invalid")
	if !strings.Contains(ge.Message, "Exceeded the maximum number of network endpoints (3)") {
		t.Errorf("message = %q", ge.Message)
	}
	e.attach(zoneA, "hybrid", ep("", "192.168.0.3", 80))
}

// TestHybridBackends: one row per backend-service rule for hybrid NEG backends.
func TestHybridBackends(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.insertHybrid(zoneA, "hybrid")
	e.insertNEG(zoneB, "vm")
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	type bs = compute.BackendService
	tests := []struct {
		name     string
		region   string // "" = global
		bs       bs
		contains string // "" = accepted
	}{
		{name: "classic ALB, RATE", bs: bs{Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid")}}},
		{name: "global external ALB", bs: bs{LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid")}}},
		{name: "mixed with a GCE_VM_IP_PORT NEG", bs: bs{Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid"), negBackend(zoneB, "vm")}}},
		{name: "proxy NLB, CONNECTION", bs: bs{Protocol: "TCP", HealthChecks: []string{"hc"},
			Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 10}}}},
		{name: "Cloud Service Mesh", bs: bs{LoadBalancingScheme: "INTERNAL_SELF_MANAGED", Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid")}}},
		{name: "regional internal ALB", region: region, bs: bs{LoadBalancingScheme: "INTERNAL_MANAGED", Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid")}}},
		{name: "UTILIZATION refused", bs: bs{Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "UTILIZATION"}}},
			contains: "RATE and CONNECTION"},
		{name: "CONNECTION on HTTP refused", bs: bs{Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 1}}},
			contains: "CONNECTION is not supported for protocol HTTP"},
		{name: "RATE needs a rate", bs: bs{Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "RATE"}}},
			contains: "Either maxRate or maxRatePerEndpoint should be set with RATE mode"},
		{name: "CONNECTION needs a limit", bs: bs{Protocol: "TCP", Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "CONNECTION"}}},
			contains: "Either maxConnections or maxConnectionsPerEndpoint should be set with CONNECTION mode"},
		{name: "internal passthrough NLB refused", region: region, bs: bs{Protocol: "TCP", LoadBalancingScheme: "INTERNAL",
			Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 1}}},
			contains: "not supported by regional backend services with load balancing scheme INTERNAL"},
		{name: "external passthrough NLB refused", region: region, bs: bs{Protocol: "TCP", LoadBalancingScheme: "EXTERNAL",
			Backends: []*compute.Backend{{Group: negURL(zoneA, "hybrid"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 1}}},
			contains: "scheme EXTERNAL"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.bs.Name = fmt.Sprintf("bs-%d", i)
			var err error
			if tc.region == "" {
				_, err = e.svc.BackendServices.Insert(project, &tc.bs).Do()
			} else {
				_, err = e.svc.RegionBackendServices.Insert(project, tc.region, &tc.bs).Do()
			}
			if tc.contains == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ge := wantAPIError(t, err, 400, "invalid")
			if !strings.Contains(ge.Message, tc.contains) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.contains)
			}
		})
	}
	// A hybrid NEG that is a backend cannot be deleted, like any NEG.
	_, err := e.svc.NetworkEndpointGroups.Delete(project, zoneA, "hybrid").Do()
	wantAPIError(t, err, 400, "resourceInUseByAnotherResource")
}

// TestHybridHealth: hybrid endpoints get health entries like GCE_VM_IP_PORT ones (fixed mode:
// UNKNOWN, then HEALTHY after FixedHealthyDelay; forced states), in listNetworkEndpoints and
// getHealth, with no instance anywhere.
func TestHybridHealth(t *testing.T) {
	e := newEnv(t, fakegce.Config{FixedHealthyDelay: 300 * time.Millisecond})
	e.insertHybrid(zoneA, "hybrid")
	e.attach(zoneA, "hybrid", ep("", "192.168.10.5", 8080), ep("", "192.168.10.6", 8080))
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "HTTP",
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT"}}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "bs", HealthChecks: []string{"hc"},
		Backends: []*compute.Backend{hybridBackend(zoneA, "hybrid")}}).Do())
	if got := fmt.Sprint(e.healths(zoneA, "hybrid")); got != "map[192.168.10.5:[bs/hc=UNKNOWN] 192.168.10.6:[bs/hc=UNKNOWN]]" {
		t.Errorf("before the delay: %s", got)
	}
	e.s.SetEndpointHealth(zoneA, "hybrid", neg.Endpoint{IP: "192.168.10.6", Port: 8080}, "UNHEALTHY")
	eventually(t, 10*time.Second, func() string {
		if got := fmt.Sprint(e.healths(zoneA, "hybrid")); got != "map[192.168.10.5:[bs/hc=HEALTHY] 192.168.10.6:[bs/hc=UNHEALTHY]]" {
			return got
		}
		return ""
	})
	gh, err := e.svc.BackendServices.GetHealth(project, "bs", &compute.ResourceGroupReference{Group: negURL(zoneA, "hybrid")}).Do()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range gh.HealthStatus {
		got = append(got, fmt.Sprintf("%q %s:%d %s", h.Instance, h.IpAddress, h.Port, h.HealthState))
	}
	if want := `["" 192.168.10.5:8080 HEALTHY "" 192.168.10.6:8080 UNHEALTHY]`; fmt.Sprint(got) != want {
		t.Errorf("getHealth = %v, want %s", got, want)
	}
}
