package annotation

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

func TestParseAutoneg(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    map[int32][]AutonegBackend
		wantErr string // substring of Error.Message
	}{
		{name: "autoneg's README example",
			value: `{"backend_services":{"80":[{"name":"http-be","max_rate_per_endpoint":100}],"443":[{"name":"https-be","region":"europe-west4","max_connections_per_endpoint":1000,"initial_capacity":50}]}}`,
			want: map[int32][]AutonegBackend{
				80:  {{Name: "http-be", MaxRatePerEndpoint: 100}},
				443: {{Name: "https-be", Region: "europe-west4", MaxConnectionsPerEndpoint: 1000, InitialCapacity: ptr.To[int32](50)}},
			}},
		{name: "numbers as strings", value: `{"backend_services":{"80":[{"name":"a","max_rate_per_endpoint":"2.5","capacity_scaler":"100"}]}}`,
			want: map[int32][]AutonegBackend{80: {{Name: "a", MaxRatePerEndpoint: 2.5, CapacityScaler: ptr.To[int32](100)}}}},
		{name: "several backend services for one port", value: `{"backend_services":{"8080":[{"name":"a"},{"name":"b","region":"us-central1"}]}}`,
			want: map[int32][]AutonegBackend{8080: {{Name: "a"}, {Name: "b", Region: "us-central1"}}}},
		{name: "no name (default applied later)", value: `{"backend_services":{"80":[{}]}}`,
			want: map[int32][]AutonegBackend{80: {{}}}},
		{name: "capacity 0", value: `{"backend_services":{"80":[{"name":"a","initial_capacity":0}]}}`,
			want: map[int32][]AutonegBackend{80: {{Name: "a", InitialCapacity: ptr.To[int32](0)}}}},
		{name: "unknown fields ignored", value: `{"backend_services":{"80":[{"name":"a","regional":true}]},"x":1}`,
			want: map[int32][]AutonegBackend{80: {{Name: "a"}}}},
		{name: "empty", value: `{}`, want: map[int32][]AutonegBackend{}},

		{name: "syntax", value: `{"backend_services":`, wantErr: "unexpected end of JSON input"},
		{name: "old map format", value: `{"backend_services":{"80":{"name":"a"}}}`, wantErr: "cannot unmarshal object"},
		{name: "port name", value: `{"backend_services":{"http":[{"name":"a"}]}}`, wantErr: `"http" is not a port number`},
		{name: "port 0", value: `{"backend_services":{"0":[{"name":"a"}]}}`, wantErr: `"0" is not a port number`},
		{name: "bad name", value: `{"backend_services":{"80":[{"name":"My_BS"}]}}`, wantErr: `"My_BS" (port 80) is not a valid GCE name`},
		{name: "bad region", value: `{"backend_services":{"80":[{"name":"a","region":"Europe West"}]}}`, wantErr: `region "Europe West"`},
		{name: "duplicate", value: `{"backend_services":{"80":[{"name":"a"},{"name":"a","max_rate_per_endpoint":1}]}}`, wantErr: `"a" is listed twice for port 80`},
		{name: "negative rate", value: `{"backend_services":{"80":[{"name":"a","max_rate_per_endpoint":-1}]}}`, wantErr: "max_rate_per_endpoint must not be negative"},
		{name: "fractional connections", value: `{"backend_services":{"80":[{"name":"a","max_connections_per_endpoint":1.5}]}}`, wantErr: "max_connections_per_endpoint must be a whole number"},
		{name: "not a number", value: `{"backend_services":{"80":[{"name":"a","max_rate_per_endpoint":"fast"}]}}`, wantErr: `"fast" is not a number`},
		{name: "capacity over 100", value: `{"backend_services":{"80":[{"name":"a","capacity_scaler":101}]}}`, wantErr: "capacity_scaler must be a whole number between 0 and 100"},
		{name: "capacity GCE cannot take", value: `{"backend_services":{"80":[{"name":"a","initial_capacity":5}]}}`, wantErr: "initial_capacity must be 0 or between 10 and 100"},
		{name: "custom metrics", value: `{"backend_services":{"80":[{"name":"a","custom_metrics":[{"name":"m"}]}]}}`, wantErr: "custom_metrics"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAutoneg(tc.value)
			if tc.wantErr != "" {
				var aerr *Error
				if !errors.As(err, &aerr) || aerr.Reason != ReasonInvalidAutoneg || !strings.Contains(aerr.Message, tc.wantErr) {
					t.Fatalf("error = %v, want an %s error containing %q", err, ReasonInvalidAutoneg, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if d := cmp.Diff(tc.want, got.BackendServices); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestAutonegFromService(t *testing.T) {
	svc := service(map[string]string{
		AutonegKey:     `{"backend_services":{"80":[{"max_rate_per_endpoint":10}],"443":[{"name":"tls"}]}}`,
		AutonegSyncKey: `{"capacity_scaler":true}`,
	}, 80, 443)
	cfg, ok, err := AutonegFromService(svc)
	if !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := Autoneg{SyncCapacityScaler: true, BackendServices: map[int32][]AutonegBackend{
		80: {{Name: "web-80", MaxRatePerEndpoint: 10}}, 443: {{Name: "tls"}},
	}}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}

	if _, ok, _ := AutonegFromService(service(nil, 80)); ok {
		t.Errorf("no annotation: ok")
	}
	if _, ok, _ := AutonegFromService(nil); ok {
		t.Errorf("nil Service: ok")
	}
	dup := service(map[string]string{AutonegKey: `{"backend_services":{"80":[{},{"name":"web-80"}]}}`}, 80)
	if _, ok, err := AutonegFromService(dup); !ok || err == nil || !strings.Contains(err.Error(), `"web-80" is listed twice`) {
		t.Errorf("default name colliding with an explicit one: ok=%v err=%v", ok, err)
	}
	badSync := service(map[string]string{AutonegKey: `{}`, AutonegSyncKey: `yes`}, 80)
	if _, _, err := AutonegFromService(badSync); err == nil {
		t.Errorf("invalid sync annotation accepted")
	}
}

func TestDefaultBackendServiceName(t *testing.T) {
	if got := DefaultBackendServiceName("web", 80); got != "web-80" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("a", 60) + "-b"
	got := DefaultBackendServiceName(long, 8080)
	if len(got) > 63 || !strings.HasSuffix(got, "-8080") || strings.Contains(got, "--") {
		t.Errorf("got %q (%d chars)", got, len(got))
	}
}

func TestAutonegStatusRoundTrip(t *testing.T) {
	st := AutonegStatus{
		BackendServices: map[string]map[string]AutonegBackend{
			"80": {"http-be": {Name: "http-be", MaxRatePerEndpoint: 100}},
		},
		NetworkEndpointGroups: map[string]string{"80": "k8s1-abc"},
		Zones:                 []string{"us-central1-b", "us-central1-a"},
	}
	want := `{"backend_services":{"80":{"http-be":{"name":"http-be","max_rate_per_endpoint":100}}},"network_endpoint_groups":{"80":"k8s1-abc"},"zones":["us-central1-a","us-central1-b"]}`
	if got := st.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if st.Zones[0] != "us-central1-b" {
		t.Errorf("String modified its receiver")
	}
	back, err := ParseAutonegStatus(want)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != want {
		t.Errorf("round trip: %s", back.String())
	}
	// gke-autoneg-controller's own status (with sync) parses too.
	if _, err := ParseAutonegStatus(`{"backend_services":{"80":{"a":{"name":"a","capacity_scaler":50}}},"network_endpoint_groups":{"80":"n"},"zones":["z"],"sync":{"capacity_scaler":true}}`); err != nil {
		t.Errorf("autoneg status: %v", err)
	}
	if _, err := ParseAutonegStatus(`{`); err == nil {
		t.Errorf("invalid status accepted")
	}
}
