package fakegce_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/compute/metadata"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// useFakeMetadata points the metadata client and ADC at the emulator, and away from anything
// on this machine (gcloud config, key files).
func useFakeMetadata(t *testing.T, base string) {
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(base, "http://"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
}

func TestMetadataServer(t *testing.T) {
	e := newEnv(t, fakegce.Config{ClusterName: "demo", Zones: []string{"us-central1-b", "us-central1-f"}})
	useFakeMetadata(t, e.base)
	ctx := context.Background()

	resp, _ := httpDo(t, http.MethodGet, e.base+"/computeMetadata/v1/project/project-id", "", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("without Metadata-Flavor: %d, want 403", resp.StatusCode)
	}
	flavor := map[string]string{"Metadata-Flavor": "Google"}
	resp, body := httpDo(t, http.MethodGet, e.base+"/computeMetadata/v1/instance/service-accounts/default/token?scopes=x", "", flavor)
	if resp.StatusCode != 200 || body != `{"access_token":"fake-token","expires_in":3600,"token_type":"Bearer"}` {
		t.Errorf("token: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Metadata-Flavor") != "Google" {
		t.Error("response lacks Metadata-Flavor: Google")
	}

	if !metadata.OnGCE() {
		t.Fatal("OnGCE false with GCE_METADATA_HOST set")
	}
	c := metadata.NewClient(nil)
	for _, tc := range []struct {
		name string
		get  func() (string, error)
		want string
	}{
		{"project", func() (string, error) { return c.ProjectIDWithContext(ctx) }, project},
		{"numeric project", func() (string, error) { return c.NumericProjectIDWithContext(ctx) }, "123456789"},
		{"zone", func() (string, error) { return c.ZoneWithContext(ctx) }, "us-central1-b"},
		{"cluster-name", func() (string, error) { return c.InstanceAttributeValueWithContext(ctx, "cluster-name") }, "demo"},
		{"cluster-location", func() (string, error) { return c.InstanceAttributeValueWithContext(ctx, "cluster-location") }, "us-central1"},
		{"network", func() (string, error) { return c.GetWithContext(ctx, "instance/network-interfaces/0/network") }, "projects/123456789/networks/default"},
		{"raw zone", func() (string, error) { return c.GetWithContext(ctx, "instance/zone") }, "projects/123456789/zones/us-central1-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	_, err := c.InstanceAttributeValueWithContext(ctx, "kube-env")
	var nd metadata.NotDefinedError
	if !errors.As(err, &nd) {
		t.Errorf("unknown key: %v, want NotDefinedError (404)", err)
	}
}

// TestADCThroughFakeMetadata builds the client the way production does (no
// WithoutAuthentication): ADC finds the fake metadata server, gets its token and sends it.
func TestADCThroughFakeMetadata(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	useFakeMetadata(t, e.base)
	svc, err := compute.NewService(context.Background(), option.WithEndpoint(e.base+"/compute/v1/"))
	if err != nil {
		t.Fatalf("compute.NewService with ADC: %v", err)
	}
	if _, err := svc.Zones.List(project).Do(); err != nil {
		t.Fatal(err)
	}
	var sawToken bool
	for _, r := range e.s.Requests() {
		if r.Method == "compute.zones.list" {
			sawToken = r.Authorization == "Bearer fake-token"
		}
	}
	if !sawToken {
		t.Errorf("zones.list without Authorization: Bearer fake-token; log: %+v", e.s.Requests())
	}
	for _, r := range e.s.Requests() {
		t.Logf("%s %s %s %d %q", r.Method, r.HTTPMethod, r.Path, r.Status, r.Authorization)
	}
	if e.s.Counts()["metadata"] == 0 {
		t.Error("no metadata request recorded")
	}
}
