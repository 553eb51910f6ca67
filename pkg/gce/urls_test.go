package gce

import (
	"strings"
	"testing"
	"unsafe"

	compute "google.golang.org/api/compute/v1"
)

func TestResourcePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/n", "projects/p/zones/z/networkEndpointGroups/n"},
		{"https://compute.googleapis.com/compute/beta/projects/p/global/networks/default", "projects/p/global/networks/default"},
		{"http://127.0.0.1:8085/compute/v1/projects/p/regions/r/subnetworks/s", "projects/p/regions/r/subnetworks/s"},
		{"projects/p/global/networks/default", "projects/p/global/networks/default"},
		{"/projects/p/global/networks/default", "projects/p/global/networks/default"},
		{"global/networks/default", "global/networks/default"},
		{"default", "default"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ResourcePath(tt.in); got != tt.want {
			t.Errorf("ResourcePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if !SameResource("https://www.googleapis.com/compute/v1/projects/p/global/networks/n", "projects/p/global/networks/n") {
		t.Error("SameResource(full, partial) = false")
	}
	if SameResource("projects/p/global/networks/a", "projects/p/global/networks/b") {
		t.Error("SameResource(a, b) = true")
	}
}

func TestNetworkURLs(t *testing.T) {
	tests := []struct{ got, want string }{
		{NetworkURL("p", "default"), "projects/p/global/networks/default"},
		{NetworkURL("p", ""), ""},
		{NetworkURL("p", "projects/q/global/networks/n"), "projects/q/global/networks/n"},
		{NetworkURL("p", "https://www.googleapis.com/compute/v1/projects/q/global/networks/n"), "https://www.googleapis.com/compute/v1/projects/q/global/networks/n"},
		{SubnetworkURL("p", "us-central1", "sub"), "projects/p/regions/us-central1/subnetworks/sub"},
		{SubnetworkURL("p", "us-central1", ""), ""},
		{SubnetworkURL("p", "us-central1", "projects/p/regions/r/subnetworks/s"), "projects/p/regions/r/subnetworks/s"},
		{NEGURL("p", "z", "n"), "https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/n"},
		{ZoneURL("p", "z"), "https://www.googleapis.com/compute/v1/projects/p/zones/z"},
		{LastSegment("https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a"), "us-central1-a"},
		{LastSegment("us-central1-a"), "us-central1-a"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestScopeOf(t *testing.T) {
	const base = "https://www.googleapis.com/compute/v1/projects/p/"
	tests := []struct {
		zone, region, selfLink string
		want                   opScope
	}{
		{base + "zones/z1", "", base + "zones/z1/operations/op", opScope{zone: "z1"}},
		{"", base + "regions/r1", "", opScope{region: "r1"}},
		{"", "", base + "zones/z2/operations/op", opScope{zone: "z2"}},
		{"", "", base + "regions/r2/operations/op", opScope{region: "r2"}},
		{"", "", base + "global/operations/op", opScope{}},
		{"", "", "", opScope{}},
	}
	for _, tt := range tests {
		if got := scopeOf(tt.zone, tt.region, tt.selfLink); got != tt.want {
			t.Errorf("scopeOf(%q, %q, %q) = %v, want %v", tt.zone, tt.region, tt.selfLink, got, tt.want)
		}
	}
	if waitMethod(opScope{zone: "z"}) != "zoneOperations.wait" || waitMethod(opScope{region: "r"}) != "regionOperations.wait" ||
		waitMethod(opScope{}) != "globalOperations.wait" {
		t.Error("waitMethod mismatch")
	}
}

func TestComputeEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8085":             "http://127.0.0.1:8085/compute/v1/",
		"http://127.0.0.1:8085/":            "http://127.0.0.1:8085/compute/v1/",
		"http://127.0.0.1:8085/compute/v1":  "http://127.0.0.1:8085/compute/v1/",
		"http://127.0.0.1:8085/compute/v1/": "http://127.0.0.1:8085/compute/v1/",
	} {
		if got := computeEndpoint(in); got != want {
			t.Errorf("computeEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInternedNames: names taken from GCE links are shared copies, not slices of the link.
func TestInternedNames(t *testing.T) {
	within := func(s, of string) bool {
		p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(of)))
		return p >= b && p < b+uintptr(len(of))
	}
	url := func() string { return strings.Clone(linkPrefix + "projects/p/zones/us-central1-a/instances/node-1") }
	a, b := url(), url()
	ea := endpointFromAPI(&compute.NetworkEndpointWithHealthStatus{NetworkEndpoint: &compute.NetworkEndpoint{Instance: a, IpAddress: "10.0.0.1", Port: 80}})
	eb := endpointFromAPI(&compute.NetworkEndpointWithHealthStatus{NetworkEndpoint: &compute.NetworkEndpoint{Instance: b, IpAddress: "10.0.0.2", Port: 80}})
	if ea.Endpoint.Instance != "node-1" || eb.Endpoint.Instance != "node-1" {
		t.Fatalf("instances %q, %q; want node-1", ea.Endpoint.Instance, eb.Endpoint.Instance)
	}
	if within(ea.Endpoint.Instance, a) || unsafe.StringData(ea.Endpoint.Instance) != unsafe.StringData(eb.Endpoint.Instance) {
		t.Error("the listed instance name holds on to its URL, or is not shared")
	}
	zone := strings.Clone(linkPrefix + "projects/p/zones/us-central1-a")
	n := fromAPI(&compute.NetworkEndpointGroup{Name: "neg", Zone: zone, Network: strings.Clone(linkPrefix + "projects/p/global/networks/default")})
	m := fromAPI(&compute.NetworkEndpointGroup{Name: "neg2", Zone: strings.Clone(zone), Network: strings.Clone(n.Network)})
	if n.Zone != "us-central1-a" || within(n.Zone, zone) || unsafe.StringData(n.Network) != unsafe.StringData(m.Network) {
		t.Errorf("NEG zone %q holds on to its URL or the network is not shared", n.Zone)
	}
}
