package gce

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/compute/v1"
)

func TestCreatedNEG(t *testing.T) {
	body := &compute.NetworkEndpointGroup{Name: "n", Description: "d", NetworkEndpointType: TypeGCEVMIPPort,
		Network: "projects/p/global/networks/default", Subnetwork: "projects/p/regions/r/subnetworks/s",
		Annotations: map[string]string{"k": "v"}}
	link := "https://www.googleapis.com/compute/v1/projects/p/zones/z/networkEndpointGroups/n"
	got, ok := createdNEG(&compute.Operation{Status: "DONE", TargetLink: link, TargetId: 42}, "z", body)
	if !ok {
		t.Fatal("createdNEG refused a complete operation")
	}
	want := NEG{ID: "42", Name: "n", Zone: "z", SelfLink: link, Description: "d", Type: TypeGCEVMIPPort,
		Network:     "https://www.googleapis.com/compute/v1/projects/p/global/networks/default",
		Subnetwork:  "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/s",
		Annotations: map[string]string{"k": "v"}}
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("createdNEG (-want +got):\n%s", diff)
	}
	for name, op := range map[string]*compute.Operation{
		"nil":         nil,
		"no link":     {TargetId: 42},
		"no targetId": {TargetLink: link},
	} {
		if _, ok := createdNEG(op, "z", body); ok {
			t.Errorf("%s: createdNEG accepted an operation without targetLink and targetId", name)
		}
	}
}
