package annotation

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	gkeSource    = Source{ConfigKey: NEGKey, StatusKey: NEGStatusKey}
	hybridSource = Source{ConfigKey: HybridNEGKey, StatusKey: HybridNEGStatusKey, Hybrid: true}
)

func TestSourceOf(t *testing.T) {
	both := map[string]string{NEGKey: `{}`, HybridNEGKey: `{}`}
	tests := []struct {
		name       string
		ann        map[string]string
		nonGCPMode bool
		want       Source
		wantOK     bool
		wantReason string
	}{
		{name: "none", ann: nil},
		{name: "status alone is no request", ann: map[string]string{HybridNEGStatusKey: `{}`}},
		{name: "gke", ann: neg(`{}`), want: gkeSource, wantOK: true},
		{name: "gke in non-gcp mode", ann: neg(`{}`), nonGCPMode: true, wantOK: true,
			want: Source{ConfigKey: NEGKey, StatusKey: NEGStatusKey, Hybrid: true}},
		{name: "hybrid", ann: map[string]string{HybridNEGKey: `{"exposed_ports":{"80":{}}}`}, want: hybridSource, wantOK: true},
		{name: "hybrid in non-gcp mode", ann: map[string]string{HybridNEGKey: `x`}, nonGCPMode: true, want: hybridSource, wantOK: true},
		{name: "both", ann: both, wantOK: true, wantReason: ReasonConflictingAnnotations},
		{name: "both in non-gcp mode", ann: both, nonGCPMode: true, wantOK: true, wantReason: ReasonConflictingAnnotations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := SourceOf(service(tc.ann, 80), tc.nonGCPMode)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if tc.wantReason != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tc.wantReason {
					t.Fatalf("err = %v, want reason %s", err, tc.wantReason)
				}
				if !strings.Contains(e.Message, HybridNEGKey) || !strings.Contains(e.Message, NEGKey) {
					t.Errorf("message %q should name both annotations", e.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("SourceOf (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok, err := SourceOf(nil, true); ok || err != nil {
		t.Errorf("SourceOf(nil) = %v, %v", ok, err)
	}
}

// TestFromSourceHybrid: the hybrid annotation is the cloud.google.com/neg JSON with the same
// checks; messages name the hybrid key.
func TestFromSourceHybrid(t *testing.T) {
	hyb := func(v string) map[string]string { return map[string]string{HybridNEGKey: v} }
	tests := []struct {
		name       string
		ann        map[string]string
		want       Config
		wantOK     bool
		wantReason string
		wantMsg    string
	}{
		{name: "absent", ann: neg(`{"exposed_ports":{"80":{}}}`)},
		// The format k8s-hybrid-neg-controller's users write.
		{name: "exposed ports", ann: hyb(`{"exposed_ports":{"80":{},"443":{"name":"my-hybrid-neg"}}}`), wantOK: true,
			want: Config{ExposedPorts: map[int32]PortConfig{80: {}, 443: {Name: "my-hybrid-neg"}}}},
		{name: "ingress and zones read too", ann: hyb(`{"ingress":true,"zones":["europe-west1-b"]}`), wantOK: true,
			want: Config{Ingress: true, Zones: []string{"europe-west1-b"}}},
		{name: "invalid JSON", ann: hyb(`{"exposed_ports":`), wantOK: true, wantReason: ReasonInvalid,
			wantMsg: "annotation " + HybridNEGKey + " is invalid: unexpected end of JSON input"},
		{name: "unknown port", ann: hyb(`{"exposed_ports":{"81":{}}}`), wantOK: true, wantReason: ReasonUnknownPort,
			wantMsg: `port 81 specified in "` + HybridNEGKey + `" doesn't exist in the service`},
		{name: "bad custom name", ann: hyb(`{"exposed_ports":{"80":{"name":"Bad"}}}`), wantOK: true,
			wantReason: ReasonInvalidCustomName, wantMsg: `in "` + HybridNEGKey + `" is invalid`},
		{name: "duplicate custom name", ann: hyb(`{"exposed_ports":{"80":{"name":"n"},"443":{"name":"n"}}}`), wantOK: true,
			wantReason: ReasonDuplicateCustomName, wantMsg: HybridNEGKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := FromSource(service(tc.ann, 80, 443), hybridSource)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if tc.wantReason != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tc.wantReason || !strings.Contains(e.Message, tc.wantMsg) {
					t.Fatalf("err = %v, want reason %s and message containing %q", err, tc.wantReason, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("FromSource (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFromSourceGKEUnchanged: FromSource with the GKE source (or the zero Source) is FromService.
func TestFromSourceGKEUnchanged(t *testing.T) {
	for _, v := range []string{`{"exposed_ports":{"80":{}}}`, `{"exposed_ports":{"81":{}}}`, `{`} {
		svc := service(neg(v), 80)
		wantCfg, wantOK, wantErr := FromService(svc)
		for _, src := range []Source{gkeSource, {}} {
			cfg, ok, err := FromSource(svc, src)
			if !cmp.Equal(cfg, wantCfg) || ok != wantOK || (err == nil) != (wantErr == nil) ||
				(err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("FromSource(%q, %+v) = %+v, %v, %v; FromService = %+v, %v, %v", v, src, cfg, ok, err, wantCfg, wantOK, wantErr)
			}
		}
	}
}

func TestStatusOf(t *testing.T) {
	// As k8s-hybrid-neg-controller writes it (encoding/json of the same shape).
	const written = `{"network_endpoint_groups":{"80":"k8s1-1a2b3c4d-default-web-80-0e1f2a3b"},"zones":["europe-west1-b","europe-west1-c"]}`
	svc := service(map[string]string{HybridNEGStatusKey: written, NEGStatusKey: `{"network_endpoint_groups":{"80":"other"}}`}, 80)
	st, ok, err := StatusOf(svc, hybridSource)
	if err != nil || !ok {
		t.Fatalf("StatusOf = %v, %v", ok, err)
	}
	want := Status{NetworkEndpointGroups: map[string]string{"80": "k8s1-1a2b3c4d-default-web-80-0e1f2a3b"}, Zones: []string{"europe-west1-b", "europe-west1-c"}}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("StatusOf (-want +got):\n%s", diff)
	}
	if st.String() != written {
		t.Errorf("String() = %s, want the same bytes as written: %s", st.String(), written)
	}
	if st, _, _ := StatusOf(svc, gkeSource); st.NetworkEndpointGroups["80"] != "other" {
		t.Errorf("GKE status = %+v", st)
	}
	if _, ok, _ := StatusOf(service(nil, 80), hybridSource); ok {
		t.Error("StatusOf without annotation: ok")
	}
	if _, ok, err := StatusOf(service(map[string]string{HybridNEGStatusKey: `[`}, 80), hybridSource); !ok || err == nil {
		t.Errorf("StatusOf of a bad value = %v, %v", ok, err)
	}
}
