package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

func TestHybridFlags(t *testing.T) {
	o := NewOptions()
	if o.NonGCPMode() || o.Hybrid.NEGType != NEGTypeGCE {
		t.Fatalf("default mode: %+v", o.Hybrid)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--region=europe-west1", "--neg-type=non-gcp", "--zone-mapping=eu-west-1a=europe-west1-b,eu-west-1b=europe-west1-c",
		"--default-neg-zone=europe-west1-b", "--neg-zones=europe-west1-d"}); err != nil {
		t.Fatal(err)
	}
	want := HybridOptions{NEGType: NEGTypeNonGCP, ZoneMapping: "eu-west-1a=europe-west1-b,eu-west-1b=europe-west1-c",
		DefaultNEGZone: "europe-west1-b", NEGZones: "europe-west1-d"}
	if diff := cmp.Diff(want, o.Hybrid); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !o.NonGCPMode() {
		t.Error("NonGCPMode false with --neg-type=non-gcp")
	}
	m, err := o.ZoneMapping("europe-west1")
	wantM := zones.Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b", "eu-west-1b": "europe-west1-c"},
		Default: "europe-west1-b", NEGZones: []string{"europe-west1-d"}}
	if err != nil || !cmp.Equal(wantM, m) {
		t.Errorf("ZoneMapping = %+v, %v; want %+v", m, err, wantM)
	}
	if _, err := o.ZoneMapping("us-central1"); err == nil {
		t.Error("ZoneMapping accepted zones outside the discovered region")
	}
}

// TestValidateHybrid: one row per start-up rule of the hybrid options.
func TestValidateHybrid(t *testing.T) {
	tests := []struct {
		name    string
		region  string
		h       HybridOptions
		wantErr string // "" = valid
	}{
		{name: "defaults", h: HybridOptions{NEGType: NEGTypeGCE}},
		{name: "gce mode with a mapping (for the hybrid annotation)", region: "europe-west1",
			h: HybridOptions{NEGType: NEGTypeGCE, ZoneMapping: "eu-west-1a=europe-west1-b"}},
		{name: "non-gcp with a mapping", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, ZoneMapping: "a=europe-west1-b"}},
		{name: "non-gcp with a default zone only", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, DefaultNEGZone: "europe-west1-c"}},
		{name: "GKE's flag", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeGCE, EnableNonGCPMode: true, DefaultNEGZone: "europe-west1-c"}},
		{name: "unknown type", h: HybridOptions{NEGType: "hybrid"}, wantErr: `--neg-type must be "gce" or "non-gcp"`},
		{name: "non-gcp without placement", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP},
			wantErr: "needs --zone-mapping or --default-neg-zone"},
		{name: "GKE's flag without placement", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeGCE, EnableNonGCPMode: true},
			wantErr: "needs --zone-mapping or --default-neg-zone"},
		{name: "non-gcp with --neg-zones only", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, NEGZones: "europe-west1-b"},
			wantErr: "needs --zone-mapping or --default-neg-zone"},
		{name: "mapping outside region", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, ZoneMapping: "a=us-central1-a"},
			wantErr: "not zones of region europe-west1"},
		{name: "default zone outside region", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, DefaultNEGZone: "europe-west2-a"},
			wantErr: `--default-neg-zone "europe-west2-a"`},
		{name: "neg zone outside region", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeGCE, NEGZones: "europe-west1-b,asia-east1-a"},
			wantErr: `--neg-zones "asia-east1-a"`},
		{name: "zones without region", h: HybridOptions{NEGType: NEGTypeNonGCP, DefaultNEGZone: "europe-west1-b"},
			wantErr: "need --region"},
		{name: "malformed mapping", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, ZoneMapping: "eu-west-1a"},
			wantErr: "--zone-mapping: zone mapping entry"},
		{name: "conflicting mapping", region: "europe-west1", h: HybridOptions{NEGType: NEGTypeNonGCP, ZoneMapping: "a=europe-west1-b,a=europe-west1-c"},
			wantErr: "mapped to both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.Region, o.Hybrid = tc.region, tc.h
			err := o.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestHybridControllerConfig(t *testing.T) {
	o := NewOptions()
	o.Region = "europe-west1"
	o.Hybrid = HybridOptions{NEGType: NEGTypeGCE, EnableNonGCPMode: true, ZoneMapping: "eu-west-1a=europe-west1-b",
		NEGZones: "europe-west1-c", AdoptHybridControllerNEGs: true}
	got, err := o.controllerConfig("europe-west1")
	if err != nil {
		t.Fatal(err)
	}
	want := controller.HybridConfig{NonGCPMode: true, AdoptHybridControllerNEGs: true, Zones: zones.Mapping{Region: "europe-west1",
		Zones: map[string]string{"eu-west-1a": "europe-west1-b"}, NEGZones: []string{"europe-west1-c"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("controllerConfig (-want +got):\n%s", diff)
	}
	if _, err := o.controllerConfig("us-central1"); err == nil {
		t.Error("controllerConfig accepted zones outside the discovered region")
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o = NewOptions()
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--adopt-hybrid-neg-controller-negs"}); err != nil || !o.Hybrid.AdoptHybridControllerNEGs {
		t.Errorf("--adopt-hybrid-neg-controller-negs: %v, %+v", err, o.Hybrid)
	}
}

// TestTrimKeepsHybridStatusWriters: the cache keeps who writes hybrid-neg-status (k8s-hybrid-neg-
// controller's field manager, say) as it does for neg-status, with only those fields.
func TestTrimKeepsHybridStatusWriters(t *testing.T) {
	owning := `{"f:metadata":{"f:annotations":{"f:solutions.cloud.google.com/hybrid-neg-status":{}},"f:finalizers":{}}}`
	both := `{"f:metadata":{"f:annotations":{"f:cloud.google.com/neg-status":{},"f:solutions.cloud.google.com/hybrid-neg-status":{}}}}`
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)},
		{Manager: "cloud-solutions", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(owning)},
		{Manager: "both", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(both)},
	}}}
	out, _ := trimForCache(svc)
	want := []metav1.ManagedFieldsEntry{
		{Manager: "cloud-solutions", FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:solutions.cloud.google.com/hybrid-neg-status":{}}}}`)},
		{Manager: "both", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(both)},
	}
	if got := out.(*corev1.Service).ManagedFields; !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("trimmed managedFields:\n got %+v\nwant %+v", got, want)
	}
}
