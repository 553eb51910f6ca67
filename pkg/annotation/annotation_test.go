package annotation

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func service(annotations map[string]string, ports ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Annotations: annotations}}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: p})
	}
	return svc
}

func neg(value string) map[string]string { return map[string]string{NEGKey: value} }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    Config
		wantErr string // Error.Message; Reason must be ReasonInvalid
	}{
		{name: "ingress", value: `{"ingress": true}`, want: Config{Ingress: true}},
		{name: "exposed ports", value: `{"exposed_ports": {"80":{}, "443":{}}}`,
			want: Config{ExposedPorts: map[int32]PortConfig{80: {}, 443: {}}}},
		{name: "custom names", value: `{"exposed_ports": {"80":{"name":"my-neg-http"}, "443":{"name":"my-neg-https"}}}`,
			want: Config{ExposedPorts: map[int32]PortConfig{80: {Name: "my-neg-http"}, 443: {Name: "my-neg-https"}}}},
		{name: "ingress and exposed", value: `{"ingress": true, "exposed_ports": {"3000":{}, "4000":{}}}`,
			want: Config{Ingress: true, ExposedPorts: map[int32]PortConfig{3000: {}, 4000: {}}}},
		{name: "zones", value: `{"exposed_ports": {"80":{}}, "zones":["us-central1-a","us-central1-b"]}`,
			want: Config{ExposedPorts: map[int32]PortConfig{80: {}}, Zones: []string{"us-central1-a", "us-central1-b"}}},
		{name: "all zones", value: `{"exposed_ports": {"80":{}}, "zones":["*"]}`,
			want: Config{ExposedPorts: map[int32]PortConfig{80: {}}, Zones: []string{"*"}}},
		{name: "empty object", value: `{}`, want: Config{}},
		{name: "ingress false", value: `{"ingress": false}`, want: Config{}},
		{name: "unknown fields ignored", value: `{"ingress": true, "foo": {"bar": [1]}, "exposed_ports": {"80": {"x": 1}}}`,
			want: Config{Ingress: true, ExposedPorts: map[int32]PortConfig{80: {}}}},
		{name: "null", value: `null`, want: Config{}},
		{name: "max int32 port", value: `{"exposed_ports": {"2147483647":{}}}`,
			want: Config{ExposedPorts: map[int32]PortConfig{2147483647: {}}}},
		{name: "empty", value: ``, wantErr: "NEG annotation is invalid: unexpected end of JSON input"},
		{name: "syntax", value: `{"ingress": true`, wantErr: "NEG annotation is invalid: unexpected end of JSON input"},
		{name: "trailing data", value: `{} {}`, wantErr: "NEG annotation is invalid: invalid character '{' after top-level value"},
		{name: "ingress string", value: `{"ingress": "true"}`,
			wantErr: "NEG annotation is invalid: json: cannot unmarshal string into Go struct field Config.ingress of type bool"},
		{name: "named port key", value: `{"exposed_ports": {"http":{}}}`,
			wantErr: "NEG annotation is invalid: json: cannot unmarshal number http into Go struct field Config.exposed_ports.http of type int32"},
		{name: "port key overflows int32", value: `{"exposed_ports": {"2147483648":{}}}`,
			wantErr: "NEG annotation is invalid: json: cannot unmarshal number 2147483648 into Config.exposed_ports.2147483648 of type int32"},
		{name: "zones not a list", value: `{"zones": "us-central1-a"}`,
			wantErr: "NEG annotation is invalid: json: cannot unmarshal string into Go struct field Config.zones of type []string"},
		{name: "not an object", value: `[1]`,
			wantErr: "NEG annotation is invalid: json: cannot unmarshal array into Go value of type annotation.Config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.value)
			if diff := cmp.Diff(wantError(ReasonInvalid, tc.wantErr), err); diff != "" {
				t.Errorf("Parse(%q) error (-want +got):\n%s", tc.value, diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.value, diff)
			}
		})
	}
}

// wantError returns the *Error expected for reason and message, or a nil error if message is empty.
func wantError(reason, message string) error {
	if message == "" {
		return nil
	}
	return &Error{Reason: reason, Message: message}
}

func TestFromService(t *testing.T) {
	tests := []struct {
		name       string
		svc        *corev1.Service
		want       Config
		wantOK     bool
		wantReason string
		wantMsg    string
	}{
		{name: "nil service", svc: nil},
		{name: "no annotations", svc: service(nil, 80)},
		{name: "other annotation", svc: service(map[string]string{NEGStatusKey: "{}"}, 80)},
		{name: "ingress", svc: service(neg(`{"ingress":true}`), 80), want: Config{Ingress: true}, wantOK: true},
		{name: "empty config", svc: service(neg(`{}`), 80), want: Config{}, wantOK: true},
		{name: "exposed port exists", svc: service(neg(`{"exposed_ports":{"80":{}}}`), 80, 443),
			want: Config{ExposedPorts: map[int32]PortConfig{80: {}}}, wantOK: true},
		{name: "custom names", svc: service(neg(`{"exposed_ports":{"80":{"name":"web-http"},"443":{"name":"web-https"}}}`), 80, 443),
			want: Config{ExposedPorts: map[int32]PortConfig{80: {Name: "web-http"}, 443: {Name: "web-https"}}}, wantOK: true},
		{name: "custom name 63 chars", svc: service(neg(`{"exposed_ports":{"80":{"name":"a12345678901234567890123456789012345678901234567890123456789012"}}}`), 80),
			want: Config{ExposedPorts: map[int32]PortConfig{80: {Name: "a12345678901234567890123456789012345678901234567890123456789012"}}}, wantOK: true},
		{name: "ingress with generated exposed names", svc: service(neg(`{"ingress":true,"exposed_ports":{"80":{}}}`), 80),
			want: Config{Ingress: true, ExposedPorts: map[int32]PortConfig{80: {}}}, wantOK: true},
		{name: "zones are not checked here", svc: service(neg(`{"zones":["nowhere"]}`), 80),
			want: Config{Zones: []string{"nowhere"}}, wantOK: true},
		{name: "invalid json", svc: service(neg(`{`), 80), wantOK: true,
			wantReason: ReasonInvalid, wantMsg: "NEG annotation is invalid: unexpected end of JSON input"},
		{name: "unknown port", svc: service(neg(`{"exposed_ports":{"81":{}}}`), 80), wantOK: true,
			wantReason: ReasonUnknownPort, wantMsg: `port 81 specified in "cloud.google.com/neg" doesn't exist in the service`},
		{name: "unknown ports sorted", svc: service(neg(`{"exposed_ports":{"82":{},"80":{},"81":{},"-1":{}}}`), 80), wantOK: true,
			wantReason: ReasonUnknownPort, wantMsg: `port -1, 81, 82 specified in "cloud.google.com/neg" doesn't exist in the service`},
		{name: "unknown port, service without ports", svc: service(neg(`{"exposed_ports":{"80":{}}}`)), wantOK: true,
			wantReason: ReasonUnknownPort, wantMsg: `port 80 specified in "cloud.google.com/neg" doesn't exist in the service`},
		{name: "unknown port reported before custom name problems", svc: service(neg(`{"ingress":true,"exposed_ports":{"81":{"name":"x"}}}`), 80), wantOK: true,
			wantReason: ReasonUnknownPort, wantMsg: `port 81 specified in "cloud.google.com/neg" doesn't exist in the service`},
		{name: "custom name with ingress", svc: service(neg(`{"ingress":true,"exposed_ports":{"80":{"name":"web-http"}}}`), 80), wantOK: true,
			wantReason: ReasonInvalidCustomName,
			wantMsg:    "configuration for negs in service (default/web) is invalid, custom neg name cannot be used with ingress enabled"},
		{name: "custom name uppercase", svc: service(neg(`{"exposed_ports":{"80":{"name":"Web"}}}`), 80), wantOK: true,
			wantReason: ReasonInvalidCustomName, wantMsg: `custom NEG name "Web" (port 80) in "cloud.google.com/neg" is invalid: ` + nameRule},
		{name: "custom names invalid, all listed", svc: service(neg(`{"exposed_ports":{"443":{"name":"web-"},"80":{"name":"1web"},"8080":{"name":"ok"}}}`), 80, 443, 8080), wantOK: true,
			wantReason: ReasonInvalidCustomName, wantMsg: `custom NEG name "1web" (port 80), "web-" (port 443) in "cloud.google.com/neg" is invalid: ` + nameRule},
		{name: "custom name 64 chars", svc: service(neg(`{"exposed_ports":{"80":{"name":"a123456789012345678901234567890123456789012345678901234567890123"}}}`), 80), wantOK: true,
			wantReason: ReasonInvalidCustomName, wantMsg: `custom NEG name "a123456789012345678901234567890123456789012345678901234567890123" (port 80) in "cloud.google.com/neg" is invalid: ` + nameRule},
		{name: "custom names shaped like generated names", svc: service(neg(`{"exposed_ports":{"80":{"name":"k8s1-a1b2c3d4-prod-web-80-12345678"},"443":{"name":"k8s2-x"},"8080":{"name":"k8s3-ok"}}}`), 80, 443, 8080), wantOK: true,
			wantReason: ReasonInvalidCustomName, wantMsg: `custom NEG name "k8s1-a1b2c3d4-prod-web-80-12345678" (port 80), "k8s2-x" (port 443) in "cloud.google.com/neg" is reserved: names starting with "k8s1-" or "k8s2-" are generated NEG names (another Service's NEG may carry it); choose a name without that prefix`},
		{name: "duplicate custom name", svc: service(neg(`{"exposed_ports":{"80":{"name":"web"},"443":{"name":"web"},"8080":{"name":"web"},"81":{"name":"x"},"82":{"name":"x"}}}`), 80, 81, 82, 443, 8080), wantOK: true,
			wantReason: ReasonDuplicateCustomName,
			wantMsg:    `custom NEG name "web" (ports 80, 443, 8080), "x" (ports 81, 82) in "cloud.google.com/neg" is used for more than one port; each port needs its own NEG`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before *corev1.Service
			if tc.svc != nil {
				before = tc.svc.DeepCopy()
			}
			got, ok, err := FromService(tc.svc)
			if diff := cmp.Diff(wantError(tc.wantReason, tc.wantMsg), err); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if tc.svc != nil {
				if diff := cmp.Diff(before, tc.svc); diff != "" {
					t.Errorf("FromService modified the Service (-before +after):\n%s", diff)
				}
			}
		})
	}
}

const nameRule = "a NEG name must be 1-63 characters long, start with a lowercase letter, " +
	"contain only lowercase letters, digits and '-', and not end with '-'"

func TestErrorIsError(t *testing.T) {
	var err error = &Error{Reason: ReasonInvalid, Message: "m"}
	if err.Error() != "m" {
		t.Errorf("Error() = %q, want %q", err.Error(), "m")
	}
}
