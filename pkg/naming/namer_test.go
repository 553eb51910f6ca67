package naming

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testUID = "a1b2c3d4e5f60718"

func TestNEGName(t *testing.T) {
	tests := []struct {
		name      string
		uid       string
		namespace string
		service   string
		port      int32
		want      string
	}{
		// gke-compat §4.2 test vectors.
		{name: "short", uid: testUID, namespace: "default", service: "my-service", port: 80,
			want: "k8s1-a1b2c3d4-default-my-service-80-912f4002"},
		{name: "proportional trim, port trimmed", uid: testUID, namespace: "team-payments-production", service: "checkout-api-gateway-internal", port: 8443,
			want: "k8s1-a1b2c3d4-team-payments-pr-checkout-api-gateway-84-a33dad05"},
		{name: "long uniform fields", uid: testUID, namespace: strings.Repeat("a", 30), service: strings.Repeat("b", 40), port: 8080,
			want: "k8s1-a1b2c3d4-aaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbbbbbb-80-3dc69925"},
		// gke-compat §2 example.
		{name: "neg-status example 80", uid: testUID, namespace: "default", service: "web", port: 80,
			want: "k8s1-a1b2c3d4-default-web-80-575c8822"},
		{name: "neg-status example 443", uid: testUID, namespace: "default", service: "web", port: 443,
			want: "k8s1-a1b2c3d4-default-web-443-35fe2e1f"},
		// Edge cases; fields written out, hashes recomputed by hash8 over the untrimmed fields.
		{name: "exactly 38, kept", uid: testUID, namespace: strings.Repeat("n", 16), service: strings.Repeat("s", 20), port: 80,
			want: "k8s1-a1b2c3d4-nnnnnnnnnnnnnnnn-ssssssssssssssssssss-80-799f1910"},
		{name: "39, trimmed to 38", uid: testUID, namespace: strings.Repeat("n", 17), service: strings.Repeat("s", 20), port: 80,
			want: "k8s1-a1b2c3d4-nnnnnnnnnnnnnnnnn-ssssssssssssssssssss-8-" + hash8(testUID, strings.Repeat("n", 17), strings.Repeat("s", 20), "80")},
		{name: "namespace trimmed to a hyphen, port trimmed away", uid: testUID,
			namespace: strings.Repeat("a", 24) + "-" + strings.Repeat("b", 30), service: strings.Repeat("c", 28), port: 80,
			want: "k8s1-a1b2c3d4-aaaaaaaaaaaaaaaaaaaaaaaa--ccccccccccccc--ac6045d8"},
		{name: "63-char namespace and service", uid: testUID, namespace: strings.Repeat("n", 63), service: strings.Repeat("s", 63), port: 65535,
			want: "k8s1-a1b2c3d4-nnnnnnnnnnnnnnnnnnn-ssssssssssssssssss-6-e4aa733d"},
		{name: "short uid used whole", uid: "abc", namespace: "default", service: "web", port: 80,
			want: "k8s1-abc-default-web-80-6c153d4e"},
		{name: "empty uid", uid: "", namespace: "default", service: "web", port: 80,
			want: "k8s1--default-web-80-d7f42f69"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNamer(tc.uid)
			got := n.NEGName(tc.namespace, tc.service, tc.port)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NEGName (-want +got):\n%s", diff)
			}
			if len(got) > 63 || !IsValidName(got) {
				t.Errorf("NEGName = %q (len %d) is not a valid GCE name", got, len(got))
			}
			if !n.IsNEG(got) {
				t.Errorf("IsNEG(%q) = false for a generated name", got)
			}
		})
	}
}

// hash8 recomputes the name hash independently of NEGName's string building.
func hash8(uid, ns, svc, port string) string {
	return sha256Hex(strings.Join([]string{uid[:min(8, len(uid))], ns, svc, port}, ";"))[:8]
}

func TestNEGNameAlwaysValid(t *testing.T) {
	n := NewNamer(testUID)
	for nsLen := 1; nsLen <= 63; nsLen++ {
		for svcLen := 1; svcLen <= 63; svcLen++ {
			for _, port := range []int32{1, 80, 8080, 65535} {
				name := n.NEGName(strings.Repeat("n", nsLen), strings.Repeat("s", svcLen), port)
				if !IsValidName(name) {
					t.Fatalf("NEGName(ns len %d, svc len %d, %d) = %q is invalid", nsLen, svcLen, port, name)
				}
			}
		}
	}
}

func TestTrimFieldsEvenly(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		fields []string
		want   []string
	}{
		{name: "under limit", limit: 10, fields: []string{"abc", "de", "f"}, want: []string{"abc", "de", "f"}},
		{name: "at limit", limit: 6, fields: []string{"abc", "de", "f"}, want: []string{"abc", "de", "f"}},
		{name: "one over, rounding favours early fields", limit: 5, fields: []string{"abc", "de", "f"}, want: []string{"abc", "de", ""}},
		{name: "gke vector 2", limit: 38, fields: []string{"team-payments-production", "checkout-api-gateway-internal", "8443"},
			want: []string{"team-payments-pr", "checkout-api-gateway", "84"}},
		{name: "no limit", limit: 0, fields: []string{"abc"}, want: []string{"abc"}},
		{name: "empty middle field", limit: 2, fields: []string{"aaaa", "", "b"}, want: []string{"aa", "", ""}},
		{name: "negative length clamped instead of panicking", limit: 1, fields: []string{"x", "y", ""}, want: []string{"x", "y", ""}},
		{name: "empty first field", limit: 38, fields: []string{"", strings.Repeat("s", 50), "80"},
			want: []string{"", strings.Repeat("s", 37), "8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := trimFieldsEvenly(tc.limit, tc.fields...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("trimFieldsEvenly (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsNEG(t *testing.T) {
	tests := []struct {
		name string
		uid  string
		neg  string
		want bool
	}{
		{name: "ours", uid: testUID, neg: "k8s1-a1b2c3d4-default-web-80-575c8822", want: true},
		{name: "other cluster", uid: testUID, neg: "k8s1-ffffffff-default-web-80-575c8822", want: false},
		{name: "custom", uid: testUID, neg: "my-neg", want: false},
		{name: "other schema", uid: testUID, neg: "k8s2-a1b2c3d4-default-web-80-575c8822", want: false},
		{name: "prefix without hyphen", uid: testUID, neg: "k8s1-a1b2c3d4", want: false},
		{name: "short uid is not a prefix match", uid: "abc", neg: "k8s1-abcd-default-web-80-575c8822", want: false},
		{name: "short uid", uid: "abc", neg: "k8s1-abc-default-web-80-575c8822", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewNamer(tc.uid).IsNEG(tc.neg); got != tc.want {
				t.Errorf("IsNEG(%q) = %v, want %v", tc.neg, got, tc.want)
			}
		})
	}
}

func TestIsValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{name: "a", want: true},
		{name: "my-neg-http", want: true},
		{name: "a1", want: true},
		{name: "a-1", want: true},
		{name: "a" + strings.Repeat("b", 62), want: true},
		{name: "", want: false},
		{name: "a" + strings.Repeat("b", 63), want: false},
		{name: "1a", want: false},
		{name: "-a", want: false},
		{name: "a-", want: false},
		{name: "My-neg", want: false},
		{name: "my_neg", want: false},
		{name: "my.neg", want: false},
		{name: "my neg", want: false},
		{name: "négative", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsValidName(tc.name); got != tc.want {
				t.Errorf("IsValidName(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestIsGeneratedFor(t *testing.T) {
	n := NewNamer(testUID)
	web80 := Description{ClusterUID: "c", Namespace: "default", ServiceName: "my-service", Port: "80"}
	tests := []struct {
		name string
		neg  string
		desc Description
		want bool
	}{
		{name: "ours", neg: "k8s1-a1b2c3d4-default-my-service-80-912f4002", desc: web80, want: true},
		{name: "other port in description", neg: "k8s1-a1b2c3d4-default-my-service-80-912f4002",
			desc: Description{Namespace: "default", ServiceName: "my-service", Port: "81"}, want: false},
		{name: "other service in description", neg: "k8s1-a1b2c3d4-default-my-service-80-912f4002",
			desc: Description{Namespace: "default", ServiceName: "other", Port: "80"}, want: false},
		{name: "other naming UID (restored cluster)", neg: NewNamer("ffffffff").NEGName("default", "my-service", 80), desc: web80, want: false},
		{name: "right prefix, wrong hash", neg: "k8s1-a1b2c3d4-default-my-service-80-00000000", desc: web80, want: false},
		{name: "custom name", neg: "my-neg", desc: web80, want: false},
		{name: "unparseable port", neg: "k8s1-a1b2c3d4-default-my-service-80-912f4002",
			desc: Description{Namespace: "default", ServiceName: "my-service", Port: "http"}, want: false},
		{name: "empty description", neg: "k8s1-a1b2c3d4-default-my-service-80-912f4002", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.IsGeneratedFor(tc.neg, tc.desc); got != tc.want {
				t.Errorf("IsGeneratedFor(%q, %+v) = %v, want %v", tc.neg, tc.desc, got, tc.want)
			}
		})
	}
}

func TestLooksGenerated(t *testing.T) {
	for name, want := range map[string]bool{
		"k8s1-a1b2c3d4-default-web-80-575c8822": true, "k8s2-abc": true, "k8s1-": true,
		"k8s3-x": false, "k8s1": false, "my-k8s1-neg": false, "web": false,
	} {
		if got := LooksGenerated(name); got != want {
			t.Errorf("LooksGenerated(%q) = %v, want %v", name, got, want)
		}
	}
}
