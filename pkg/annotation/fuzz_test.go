package annotation

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var fuzzSeeds = []string{
	`{"ingress": true}`,
	`{"exposed_ports": {"80":{}, "443":{}}}`,
	`{"exposed_ports": {"80":{"name":"my-neg-http"}, "443":{"name":"my-neg-https"}}}`,
	`{"ingress": true, "exposed_ports": {"3000":{}, "4000":{}}}`,
	`{"exposed_ports": {"80":{}}, "zones":["us-central1-a","us-central1-b"]}`,
	`{"exposed_ports": {"80":{}}, "zones":["*"]}`,
	`{"exposed_ports": {"http":{}}}`,
	`{"exposed_ports": {"+80":{}, "080":{"name":"x"}}}`,
	`{"EXPOSED_PORTS": {"80":{"NAME":"a"}}}`,
	`null`, ``, `{`, `[]`,
}

// FuzzParse checks that Parse never panics, fails only with *Error, and that a parsed config
// re-marshals to JSON that parses back to the same config.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		cfg, err := Parse(value)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonInvalid {
				t.Fatalf("Parse(%q) error %v is not an *Error with reason %s", value, err, ReasonInvalid)
			}
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", cfg, err)
		}
		again, err := Parse(string(b))
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v", value, err)
		}
		if diff := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-marshal of Parse(%q) changed the config (-first +second):\n%s", value, diff)
		}
	})
}

// FuzzFromService checks that FromService never panics, returns only *Error, and that an accepted
// config only exposes ports of the Service, with valid, distinct custom names.
func FuzzFromService(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, int32(80), int32(443))
	}
	f.Fuzz(func(t *testing.T, value string, p1, p2 int32) {
		svc := service(neg(value), p1, p2)
		cfg, ok, err := FromService(svc)
		if !ok {
			t.Fatalf("ok = false with the annotation present")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || e.Message == "" {
				t.Fatalf("error %#v is not a complete *Error", err)
			}
			return
		}
		names := map[string]bool{}
		for p, pc := range cfg.ExposedPorts {
			if p != p1 && p != p2 {
				t.Errorf("accepted port %d not in the Service", p)
			}
			if pc.Name == "" {
				continue
			}
			if cfg.Ingress {
				t.Errorf("accepted custom name %q with ingress", pc.Name)
			}
			if names[pc.Name] {
				t.Errorf("accepted duplicate custom name %q", pc.Name)
			}
			names[pc.Name] = true
		}
	})
}
