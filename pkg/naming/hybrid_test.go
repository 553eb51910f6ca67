package naming

import (
	"strings"
	"testing"
)

func TestHybridControllerName(t *testing.T) {
	// Vectors computed independently (Python hashlib) from the algorithm in the doc comment.
	tests := []struct {
		clusterID, ns, svc string
		port               int32
		want               string
	}{
		{"1a2b3c4d", "default", "web", 80, "k8s1-1a2b3c4d-default-web-80-c937fc57"},
		{"1a2b3c4d5e6f", "team-payments-production", "checkout-api-gateway-internal", 8443,
			"k8s1-1a2b3c4d-team-payments-production-checkout-api-ga-f3056304"},
		{"abcdef01", strings.Repeat("a", 30), strings.Repeat("b", 40), 8080,
			"k8s1-abcdef01-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbb-3da42ded"},
	}
	for _, tc := range tests {
		got := HybridControllerName(tc.clusterID, tc.ns, tc.svc, tc.port)
		if got != tc.want {
			t.Errorf("HybridControllerName(%q, %q, %q, %d) = %q, want %q", tc.clusterID, tc.ns, tc.svc, tc.port, got, tc.want)
		}
		if !IsValidName(got) {
			t.Errorf("%q is not a valid GCE name", got)
		}
		if ours := NewNamer(tc.clusterID).NEGName(tc.ns, tc.svc, tc.port); ours == got {
			t.Errorf("NEGName equals HybridControllerName: %q", got)
		}
	}
}

func TestIsHybridControllerNEG(t *testing.T) {
	marks := func(creator, svc string) map[string]string {
		return map[string]string{HybridControllerCreatedByKey: creator, HybridControllerServiceKey: svc}
	}
	ours := NewDescription("cluster", "default", "web", 80).String()
	tests := []struct {
		name string
		desc string
		ann  map[string]string
		want bool
	}{
		{"its NEG for the Service", HybridControllerDescription, marks(HybridControllerCreatedBy, "default/web"), true},
		{"extra annotations allowed", HybridControllerDescription,
			map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "default/web", "x": "y"}, true},
		{"another Service", HybridControllerDescription, marks(HybridControllerCreatedBy, "default/api"), false},
		{"another namespace", HybridControllerDescription, marks(HybridControllerCreatedBy, "prod/web"), false},
		{"another creator", HybridControllerDescription, marks("someone", "default/web"), false},
		{"no annotations", HybridControllerDescription, nil, false},
		{"our description", ours, marks(HybridControllerCreatedBy, "default/web"), false},
		{"empty description", "", marks(HybridControllerCreatedBy, "default/web"), false},
	}
	for _, tc := range tests {
		if got := IsHybridControllerNEG(tc.desc, tc.ann, "default", "web"); got != tc.want {
			t.Errorf("%s: IsHybridControllerNEG = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHybridControllerService(t *testing.T) {
	tests := []struct {
		name    string
		desc    string
		ann     map[string]string
		ns, svc string
		ok      bool
	}{
		{"its NEG", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "prod/web"}, "prod", "web", true},
		{"no Service", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy}, "", "", false},
		{"no namespace", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "/web"}, "", "", false},
		{"no name", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "prod/"}, "", "", false},
		{"two slashes", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "a/b/c"}, "", "", false},
		{"another creator", HybridControllerDescription, map[string]string{HybridControllerCreatedByKey: "x", HybridControllerServiceKey: "prod/web"}, "", "", false},
		{"another description", "Kubernetes service", map[string]string{HybridControllerCreatedByKey: HybridControllerCreatedBy, HybridControllerServiceKey: "prod/web"}, "", "", false},
	}
	for _, tc := range tests {
		ns, svc, ok := HybridControllerService(tc.desc, tc.ann)
		if ns != tc.ns || svc != tc.svc || ok != tc.ok {
			t.Errorf("%s: HybridControllerService = %q, %q, %v; want %q, %q, %v", tc.name, ns, svc, ok, tc.ns, tc.svc, tc.ok)
		}
	}
}

func TestIsHybridControllerName(t *testing.T) {
	long := HybridControllerName("1a2b3c4d5e6f", "team-payments-production", "checkout-api-gateway-internal", 8443)
	tests := []struct {
		name, neg, ns, svc string
		port               int32
		want               bool
	}{
		{"8-character ID", "k8s1-1a2b3c4d-default-web-80-c937fc57", "default", "web", 80, true},
		{"short ID", HybridControllerName("abc", "default", "web", 80), "default", "web", 80, true},
		{"cut name", long, "team-payments-production", "checkout-api-gateway-internal", 8443, true},
		{"another port", "k8s1-1a2b3c4d-default-web-80-c937fc57", "default", "web", 81, false},
		{"another Service", "k8s1-1a2b3c4d-default-web-80-c937fc57", "default", "api", 80, false},
		{"our generated name", NewNamer("1a2b3c4d").NEGName("default", "web", 80), "default", "web", 80, false},
		{"custom name", "web-neg", "default", "web", 80, false},
		{"prefix only", "k8s1-", "default", "web", 80, false},
	}
	for _, tc := range tests {
		if got := IsHybridControllerName(tc.neg, tc.ns, tc.svc, tc.port); got != tc.want {
			t.Errorf("%s: IsHybridControllerName(%q) = %v, want %v", tc.name, tc.neg, got, tc.want)
		}
	}
}
