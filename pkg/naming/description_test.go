package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const clusterUID = "19a7a1cc-6a3e-4bd1-9f57-0c1c0a6b8e2d"

func TestDescriptionString(t *testing.T) {
	tests := []struct {
		name string
		desc Description
		want string
	}{
		{name: "gke example", desc: NewDescription(clusterUID, "default", "web", 80),
			want: `{"cluster-uid":"19a7a1cc-6a3e-4bd1-9f57-0c1c0a6b8e2d","namespace":"default","service-name":"web","port":"80"}`},
		{name: "empty", desc: Description{}, want: `{}`},
		{name: "omitempty", desc: Description{ClusterUID: "c", Port: "443"}, want: `{"cluster-uid":"c","port":"443"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.desc.String()); diff != "" {
				t.Errorf("String() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDescription(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Description
		wantErr bool
	}{
		{name: "gke example", in: `{"cluster-uid":"19a7a1cc-6a3e-4bd1-9f57-0c1c0a6b8e2d","namespace":"default","service-name":"web","port":"80"}`,
			want: NewDescription(clusterUID, "default", "web", 80)},
		{name: "key order irrelevant, unknown keys ignored", in: `{"port":"80","zone":"z","namespace":"default","cluster-uid":"c","service-name":"web"}`,
			want: Description{ClusterUID: "c", Namespace: "default", ServiceName: "web", Port: "80"}},
		{name: "empty object", in: `{}`, want: Description{}},
		{name: "empty string", in: ``, wantErr: true},
		{name: "free text", in: `created by hand`, wantErr: true},
		{name: "port as number", in: `{"port":80}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDescription(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseDescription (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	want := NewDescription(clusterUID, "default", "web", 80)
	desc := func(cluster, ns, svc, port string) string {
		return Description{ClusterUID: cluster, Namespace: ns, ServiceName: svc, Port: port}.String()
	}
	tests := []struct {
		name      string
		existing  string
		generated bool
		want      Ownership
	}{
		{name: "empty, generated", existing: "", generated: true, want: Adoptable},
		{name: "empty, custom", existing: "", generated: false, want: Foreign},
		{name: "unparseable, generated", existing: "made by terraform", generated: true, want: Adoptable},
		{name: "unparseable, custom", existing: "made by terraform", generated: false, want: Foreign},
		{name: "empty json object, generated", existing: "{}", generated: true, want: Adoptable},
		{name: "empty json object, custom", existing: "{}", generated: false, want: Foreign},
		{name: "unknown keys only, custom", existing: `{"owner":"me"}`, generated: false, want: Foreign},
		{name: "match, generated", existing: want.String(), generated: true, want: Owned},
		{name: "match, custom", existing: want.String(), generated: false, want: Owned},
		{name: "other cluster", existing: desc("other", "default", "web", "80"), generated: true, want: Foreign},
		{name: "other namespace", existing: desc(clusterUID, "prod", "web", "80"), generated: true, want: Foreign},
		{name: "no cluster uid", existing: desc("", "default", "web", "80"), generated: true, want: Foreign},
		{name: "negbinding-style description", existing: `{"cluster-name":"c","namespace":"default","backend-ref":"x"}`, generated: false, want: Foreign},
		{name: "other service", existing: desc(clusterUID, "default", "api", "80"), generated: true, want: OtherService},
		{name: "other port", existing: desc(clusterUID, "default", "web", "443"), generated: false, want: OtherService},
		{name: "other cluster wins over other service", existing: desc("other", "default", "api", "443"), generated: true, want: Foreign},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.existing, want, tc.generated); got != tc.want {
				t.Errorf("Classify(%q, generated=%v) = %v, want %v", tc.existing, tc.generated, got, tc.want)
			}
		})
	}
}

func TestOwnershipString(t *testing.T) {
	tests := []struct {
		o    Ownership
		want string
	}{
		{Foreign, "Foreign"}, {Owned, "Owned"}, {Adoptable, "Adoptable"}, {OtherService, "OtherService"}, {Ownership(9), "Ownership(9)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.o.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
