package gce

import "testing"

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
