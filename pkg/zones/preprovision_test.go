package zones

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPreprovision(t *testing.T) {
	region := "us-central1"
	regionZones := []string{"us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"}
	tests := []struct {
		name        string
		field       []string
		regionZones []string // nil: unknown
		want        []string
		wantErr     []string // substrings; none = no error
		unknown     bool     // the error is ErrRegionZonesUnknown
	}{
		{name: "absent", field: nil, regionZones: regionZones},
		{name: "empty list", field: []string{}, regionZones: regionZones},
		{name: "absent, zones unknown", field: nil},
		{name: "all zones", field: []string{"*"}, regionZones: regionZones, want: regionZones},
		{name: "all zones twice", field: []string{"*", "*"}, regionZones: regionZones, want: regionZones},
		{name: "listed", field: []string{"us-central1-b", "us-central1-a"}, regionZones: regionZones,
			want: []string{"us-central1-a", "us-central1-b"}},
		{name: "duplicates", field: []string{"us-central1-b", "us-central1-b"}, regionZones: regionZones,
			want: []string{"us-central1-b"}},
		{name: "wildcard mixed with a zone", field: []string{"*", "us-central1-a"}, regionZones: regionZones,
			wantErr: []string{`"*" (every zone of the region) cannot be combined with zone names ("us-central1-a")`}},
		{name: "other region", field: []string{"us-east1-b"}, regionZones: regionZones,
			wantErr: []string{`zone "us-east1-b" is not in the cluster's region zones: [us-central1-a us-central1-b us-central1-c us-central1-f]`}},
		{name: "no such zone in the region", field: []string{"us-central1-z"}, regionZones: regionZones,
			wantErr: []string{`zone "us-central1-z" is not in the cluster's region zones`}},
		{name: "malformed", field: []string{"US-CENTRAL1-A", ""}, regionZones: regionZones,
			wantErr: []string{`zones "", "US-CENTRAL1-A" are not in the cluster's region zones`}},
		{name: "region name", field: []string{"us-central1"}, regionZones: regionZones,
			wantErr: []string{`zone "us-central1" is not`}},
		{name: "one bad entry spoils the field", field: []string{"us-central1-a", "incorrect_value"}, regionZones: regionZones,
			wantErr: []string{`zone "incorrect_value" is not`}},
		{name: "wildcard, zones unknown", field: []string{"*"}, unknown: true},
		{name: "listed, zones unknown", field: []string{"us-central1-a"}, unknown: true},
		{name: "malformed, zones unknown", field: []string{"us-east1-b"},
			wantErr: []string{`zone "us-east1-b" is not in the cluster's region us-central1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.field)
			got, err := Preprovision(tc.field, region, tc.regionZones)
			if !slices.Equal(before, tc.field) {
				t.Errorf("Preprovision modified its input: %v → %v", before, tc.field)
			}
			switch {
			case tc.unknown:
				if !errors.Is(err, ErrRegionZonesUnknown) {
					t.Fatalf("Preprovision() = %v, %v; want ErrRegionZonesUnknown", got, err)
				}
				return
			case len(tc.wantErr) > 0:
				if err == nil || errors.Is(err, ErrRegionZonesUnknown) {
					t.Fatalf("Preprovision() = %v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if got != nil {
					t.Errorf("Preprovision() returned zones %v with an error", got)
				}
				return
			case err != nil:
				t.Fatalf("Preprovision() error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Preprovision() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPreprovisionResultIsACopy(t *testing.T) {
	regionZones := []string{"us-central1-a", "us-central1-b"}
	got, err := Preprovision([]string{"*"}, "us-central1", regionZones)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = "changed"
	if regionZones[0] != "us-central1-a" {
		t.Errorf("the result shares memory with regionZones")
	}
}
