package zones

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestIsZoneOf(t *testing.T) {
	tests := []struct {
		zone, region string
		want         bool
	}{
		{"us-central1-a", "us-central1", true},
		{"europe-west1-b", "europe-west1", true},
		{"northamerica-northeast1-c", "northamerica-northeast1", true},
		{"us-central1-a", "us-east1", false},
		{"us-central1", "us-central1", false},
		{"us-central1-", "us-central1", false},
		{"us-central1-a-b", "us-central1", false},
		{"us-central1-A", "us-central1", false},
		{"eu-west-1a", "eu-west-1", false}, // AWS
		{"eastus-1", "eastus", false},      // Azure
		{"us-central1-a", "", false},
		{"", "us-central1", false},
		{"us-central10-a", "us-central1", false},
	}
	for _, tc := range tests {
		if got := IsZoneOf(tc.zone, tc.region); got != tc.want {
			t.Errorf("IsZoneOf(%q, %q) = %v, want %v", tc.zone, tc.region, got, tc.want)
		}
	}
}

func TestParseZoneMapping(t *testing.T) {
	tests := []struct {
		value   string
		want    map[string]string
		wantErr string
	}{
		{value: "", want: nil},
		{value: " , ", want: nil},
		{value: "eu-west-1a=europe-west1-b", want: map[string]string{"eu-west-1a": "europe-west1-b"}},
		{value: " eu-west-1a = europe-west1-b , eu-west-1b=europe-west1-c,",
			want: map[string]string{"eu-west-1a": "europe-west1-b", "eu-west-1b": "europe-west1-c"}},
		{value: "a=europe-west1-b,b=europe-west1-b", want: map[string]string{"a": "europe-west1-b", "b": "europe-west1-b"}},
		{value: "a=europe-west1-b,a=europe-west1-b", want: map[string]string{"a": "europe-west1-b"}},
		{value: "a=europe-west1-b,a=europe-west1-c", wantErr: `mapped to both "europe-west1-b" and "europe-west1-c"`},
		{value: "eu-west-1a", wantErr: "want <kubernetes zone>=<gce zone>"},
		{value: "=europe-west1-b", wantErr: "want <kubernetes zone>=<gce zone>"},
		{value: "a=", wantErr: "want <kubernetes zone>=<gce zone>"},
		{value: "a=b=c", wantErr: "more than one '='"},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := ParseZoneMapping(tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseZoneMapping(%q) error = %v, want %q", tc.value, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseZoneMapping(%q) (-want +got):\n%s", tc.value, diff)
			}
		})
	}
}

func TestParseZoneList(t *testing.T) {
	if diff := cmp.Diff([]string{"us-central1-a", "us-central1-b"}, ParseZoneList(" us-central1-b,us-central1-a,,us-central1-b ")); diff != "" {
		t.Errorf("ParseZoneList (-want +got):\n%s", diff)
	}
	if got := ParseZoneList(""); got != nil {
		t.Errorf("ParseZoneList(\"\") = %v, want nil", got)
	}
}

func TestMappingValidate(t *testing.T) {
	tests := []struct {
		name    string
		m       Mapping
		wantErr []string // substrings; none = valid
	}{
		{name: "empty, no region", m: Mapping{}},
		{name: "empty, region", m: Mapping{Region: "us-central1"}},
		{name: "all in region", m: Mapping{Region: "europe-west1",
			Zones:   map[string]string{"eu-west-1a": "europe-west1-b", "eu-west-1b": "europe-west1-c"},
			Default: "europe-west1-b", NEGZones: []string{"europe-west1-d"}}},
		{name: "mapping outside region", m: Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "us-central1-a"}},
			wantErr: []string{"not zones of region europe-west1", `--zone-mapping eu-west-1a= "us-central1-a"`}},
		{name: "default outside region", m: Mapping{Region: "europe-west1", Default: "europe-west2-a"},
			wantErr: []string{`--default-neg-zone "europe-west2-a"`}},
		{name: "neg zone not a zone name", m: Mapping{Region: "europe-west1", NEGZones: []string{"europe-west1"}},
			wantErr: []string{`--neg-zones "europe-west1"`}},
		{name: "foreign zone as target", m: Mapping{Region: "europe-west1", Zones: map[string]string{"a": "eu-west-1a"}},
			wantErr: []string{`"eu-west-1a"`}},
		{name: "every problem listed", m: Mapping{Region: "europe-west1", Zones: map[string]string{"b": "x", "a": "y"}, Default: "z", NEGZones: []string{"w"}},
			wantErr: []string{`--zone-mapping a= "y", --zone-mapping b= "x", --default-neg-zone "z", --neg-zones "w"`}},
		{name: "zones need a region", m: Mapping{Default: "europe-west1-b"},
			wantErr: []string{"need --region", `--default-neg-zone "europe-west1-b"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestMappingGCEZone(t *testing.T) {
	m := Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b", "europe-west1-c": "europe-west1-d"}}
	withDefault := m
	withDefault.Default = "europe-west1-c"
	tests := []struct {
		name    string
		m       Mapping
		k8sZone string
		want    string
		wantOK  bool
	}{
		{name: "mapped", m: m, k8sZone: "eu-west-1a", want: "europe-west1-b", wantOK: true},
		{name: "mapping wins over identity", m: m, k8sZone: "europe-west1-c", want: "europe-west1-d", wantOK: true},
		{name: "zone of the region kept", m: m, k8sZone: "europe-west1-b", want: "europe-west1-b", wantOK: true},
		{name: "zone of another region not kept", m: m, k8sZone: "us-central1-a"},
		{name: "unmapped, no default", m: m, k8sZone: "eu-west-1b"},
		{name: "no zone, no default", m: m, k8sZone: ""},
		{name: "unmapped to default", m: withDefault, k8sZone: "eu-west-1b", want: "europe-west1-c", wantOK: true},
		{name: "no zone to default", m: withDefault, k8sZone: "", want: "europe-west1-c", wantOK: true},
		{name: "zero mapping", m: Mapping{}, k8sZone: "us-central1-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.m.GCEZone(tc.k8sZone)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("GCEZone(%q) = %q, %v; want %q, %v", tc.k8sZone, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestMappingFromNode(t *testing.T) {
	m := Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b"}, Default: "europe-west1-c"}
	noDefault := Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b"}}
	aws := func(name string, opts ...nodeOpt) *corev1.Node {
		return node(name, append([]nodeOpt{providerID("aws:///eu-west-1a/i-0123")}, opts...)...)
	}
	tests := []struct {
		name string
		m    Mapping
		node *corev1.Node
		want Node
	}{
		{name: "nil", m: m, node: nil, want: Node{Reason: ReasonNoZone}},
		{name: "mapped label", m: m, node: aws("n1", label(LabelZone, "eu-west-1a")),
			want: Node{Name: "n1", Zone: "europe-west1-b", Candidate: true}},
		{name: "deprecated label", m: m, node: aws("n1", label(LabelZoneDeprecated, "eu-west-1a")),
			want: Node{Name: "n1", Zone: "europe-west1-b", Candidate: true}},
		{name: "unmapped label to default", m: m, node: aws("n1", label(LabelZone, "eu-west-1b")),
			want: Node{Name: "n1", Zone: "europe-west1-c", Candidate: true}},
		{name: "no label to default", m: m, node: aws("n1"),
			want: Node{Name: "n1", Zone: "europe-west1-c", Candidate: true}},
		{name: "unmapped without default: no zone", m: noDefault, node: aws("n1", label(LabelZone, "eu-west-1b")),
			want: Node{Name: "n1", Reason: ReasonNoZone}},
		{name: "providerID ignored, no instance", m: noDefault, node: node("n1"),
			want: Node{Name: "n1", Reason: ReasonNoZone}},
		{name: "GCE node keeps its labelled zone of the region", m: noDefault,
			node: node("n1", providerID("gce://p/europe-west1-d/vm"), label(LabelZone, "europe-west1-d")),
			want: Node{Name: "n1", Zone: "europe-west1-d", Candidate: true}},
		{name: "not ready", m: m, node: aws("n1", label(LabelZone, "eu-west-1a"), conditions(ready(corev1.ConditionFalse))),
			want: Node{Name: "n1", Zone: "europe-west1-b", Reason: ReasonNotReady}},
		{name: "excluded", m: m, node: aws("n1", label(LabelZone, "eu-west-1a"), label(LabelExcludeFromLB, "")),
			want: Node{Name: "n1", Zone: "europe-west1-b", Reason: ReasonExcludedByLabel}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.m.FromNode(tc.node)); diff != "" {
				t.Errorf("FromNode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMappingNEGZonesFor(t *testing.T) {
	m := Mapping{Region: "europe-west1", NEGZones: []string{"europe-west1-d", "europe-west1-b"}}
	nodes := []Node{
		{Name: "a", Zone: "europe-west1-c", Candidate: true},
		{Name: "b", Zone: "europe-west1-b", Candidate: true},
		{Name: "c", Zone: "europe-west1-e", Reason: ReasonNotReady},
	}
	if diff := cmp.Diff([]string{"europe-west1-b", "europe-west1-c", "europe-west1-d"}, m.NEGZonesFor(nodes)); diff != "" {
		t.Errorf("NEGZonesFor (-want +got):\n%s", diff)
	}
	if got := (Mapping{}).NEGZonesFor(nil); len(got) != 0 {
		t.Errorf("NEGZonesFor of nothing = %v", got)
	}
}

func TestMappingEmpty(t *testing.T) {
	if !(Mapping{Region: "r"}).Empty() || (Mapping{Default: "z"}).Empty() {
		t.Error("Empty() wrong")
	}
}
