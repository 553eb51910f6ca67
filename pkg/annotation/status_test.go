package annotation

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStatusString(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		want   string
	}{
		{name: "empty", status: Status{}, want: `{}`},
		{name: "empty non-nil", status: Status{NetworkEndpointGroups: map[string]string{}, Zones: []string{}}, want: `{}`},
		{name: "gke example", status: Status{
			NetworkEndpointGroups: map[string]string{
				"80":  "k8s1-a1b2c3d4-default-web-80-575c8822",
				"443": "k8s1-a1b2c3d4-default-web-443-35fe2e1f",
			},
			Zones: []string{"us-central1-b", "us-central1-a"},
		}, want: `{"network_endpoint_groups":{"443":"k8s1-a1b2c3d4-default-web-443-35fe2e1f","80":"k8s1-a1b2c3d4-default-web-80-575c8822"},"zones":["us-central1-a","us-central1-b"]}`},
		{name: "zones only", status: Status{Zones: []string{"z"}}, want: `{"zones":["z"]}`},
		{name: "negs only", status: Status{NetworkEndpointGroups: map[string]string{"80": "n"}}, want: `{"network_endpoint_groups":{"80":"n"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]string(nil), tc.status.Zones...)
			if diff := cmp.Diff(tc.want, tc.status.String()); diff != "" {
				t.Errorf("String() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, append([]string(nil), tc.status.Zones...)); diff != "" {
				t.Errorf("String() modified Zones (-before +after):\n%s", diff)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    Status
		wantErr error
	}{
		{name: "gke example",
			value: `{"network_endpoint_groups":{"443":"k8s1-a1b2c3d4-default-web-443-35fe2e1f","80":"k8s1-a1b2c3d4-default-web-80-575c8822"},"zones":["us-central1-a","us-central1-b"]}`,
			want: Status{
				NetworkEndpointGroups: map[string]string{"443": "k8s1-a1b2c3d4-default-web-443-35fe2e1f", "80": "k8s1-a1b2c3d4-default-web-80-575c8822"},
				Zones:                 []string{"us-central1-a", "us-central1-b"},
			}},
		{name: "empty object", value: `{}`, want: Status{}},
		{name: "zones kept as written", value: `{"zones":["b","a"]}`, want: Status{Zones: []string{"b", "a"}}},
		{name: "invalid", value: `{"zones":"a"}`, wantErr: &Error{Reason: ReasonInvalidStatus,
			Message: "NEG status annotation is invalid: json: cannot unmarshal string into Go struct field Status.zones of type []string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus(tc.value)
			if diff := cmp.Diff(tc.wantErr, err); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusRoundTrip(t *testing.T) {
	in := `{"network_endpoint_groups":{"443":"b","80":"a"},"zones":["x","y"]}`
	s, err := ParseStatus(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, s.String()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
