package gce_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// Workload Identity Federation, end to end with the real client libraries: an external_account
// credential configuration (what `gcloud iam workload-identity-pools create-cred-config` writes)
// named by GOOGLE_APPLICATION_CREDENTIALS, its subject token in a file (the projected Kubernetes
// service-account token), and the emulator's STS and IAM Credentials endpoints as token_url and
// service_account_impersonation_url. The adapter is built as the controller builds it with
// --gce-endpoint and GOOGLE_APPLICATION_CREDENTIALS set (app.gceConfig: Endpoint, no
// WithoutAuth, no HTTPClient), so Application Default Credentials do the exchange.
//
// The auth libraries (cloud.google.com/go/auth, golang.org/x/oauth2/google/externalaccount) do
// not restrict token_url or the impersonation URL to googleapis.com hosts: golang/oauth2#514
// (2021) added such a check, golang/oauth2#627 (2023) removed it for other universe domains and
// the docs now warn to validate credential files from outside sources instead. Plain http URLs
// work too, so no test-only hook is needed.

const (
	wifAudience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/pool/providers/eks"
	wifSA       = "neg-controller@test-project.iam.gserviceaccount.com"
	wifSubject  = "eyJhbGciOiJSUzI1NiJ9.k8s-projected-token.sig" // what the kubelet writes; opaque here
)

// credConfig writes a credential configuration and the subject token file into dir and returns
// the configuration's path. impersonate "" leaves service_account_impersonation_url out (direct
// resource access with the federated token).
func credConfig(t *testing.T, dir, base, subject, impersonate string) string {
	t.Helper()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(subject), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"universe_domain":    "googleapis.com",
		"type":               "external_account",
		"audience":           wifAudience,
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_url":          base + "/v1/token",
		"credential_source":  map[string]any{"file": tokenFile, "format": map[string]string{"type": "text"}},
	}
	if impersonate != "" {
		cfg["service_account_impersonation_url"] = base + "/v1/projects/-/serviceAccounts/" + impersonate + ":generateAccessToken"
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credential-configuration.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wifCloud builds the adapter the way the controller does against a custom endpoint with ADC.
func wifCloud(t *testing.T, base string, withoutAuth bool) *gce.Compute {
	t.Helper()
	c, err := gce.New(context.Background(), gce.Config{Project: project, Region: region, Endpoint: base,
		WithoutAuth: withoutAuth, MaxCallAttempts: 1})
	if err != nil {
		t.Fatalf("gce.New: %v", err)
	}
	return c
}

// computeCalls returns the Compute requests of the log as "method status principal".
func computeCalls(srv *fakegce.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Method, "compute.") {
			out = append(out, r.Method+" "+http.StatusText(r.Status)+" "+r.Principal)
		}
	}
	return out
}

func TestWorkloadIdentityFederation(t *testing.T) {
	t.Setenv("GCE_METADATA_HOST", "") // ADC must not find a metadata server instead
	tests := []struct {
		name        string
		subject     string // written to the token file
		impersonate string
		// want: the Compute call's outcome, and which token endpoints were called.
		wantPrincipal string // "" = the call fails before reaching Compute
		wantSTS       int
		wantIAM       int
		wantErr       string
	}{
		{name: "impersonating a service account", subject: wifSubject, impersonate: wifSA,
			wantPrincipal: "serviceAccount:" + wifSA, wantSTS: 1, wantIAM: 1},
		{name: "federated token, direct resource access", subject: wifSubject,
			wantPrincipal: "federated:" + wifAudience, wantSTS: 1},
		{name: "wrong subject token", subject: "not-the-projected-token", impersonate: wifSA,
			wantSTS: 1, wantErr: "invalid_grant"},
		{name: "service account not granted", subject: wifSubject, impersonate: "other@test-project.iam.gserviceaccount.com",
			wantSTS: 1, wantIAM: 1, wantErr: "PERMISSION_DENIED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: project, Region: region, Auth: &fakegce.AuthConfig{
				Required: true, SubjectToken: wifSubject, Audience: wifAudience, ServiceAccounts: []string{wifSA}}})
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", credConfig(t, t.TempDir(), base, tc.subject, tc.impersonate))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			zones, err := wifCloud(t, base, false).ListZones(ctx)
			counts := srv.Counts()
			if counts["sts.token"] != tc.wantSTS || counts["iamcredentials.generateAccessToken"] != tc.wantIAM {
				t.Errorf("token endpoint calls = %v, want sts %d, iam %d", counts, tc.wantSTS, tc.wantIAM)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ListZones = %v, %v; want an error containing %q", zones, err, tc.wantErr)
				}
				if calls := computeCalls(srv); len(calls) != 0 {
					t.Errorf("Compute was called without a token: %v", calls)
				}
				return
			}
			if err != nil || len(zones) == 0 {
				t.Fatalf("ListZones = %v, %v", zones, err)
			}
			if calls := computeCalls(srv); len(calls) != 1 || calls[0] != "compute.zones.list OK "+tc.wantPrincipal {
				t.Errorf("Compute calls = %q, want one zones.list as %s", calls, tc.wantPrincipal)
			}
		})
	}
}

// TestRequireAuthWithoutCredentials: the same emulator refuses the adapter built without
// credentials (what the controller does with --gce-endpoint and neither
// GOOGLE_APPLICATION_CREDENTIALS nor GCE_METADATA_HOST): 401, classified Permanent.
func TestRequireAuthWithoutCredentials(t *testing.T) {
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: project, Region: region, Auth: &fakegce.AuthConfig{Required: true}})
	_, err := wifCloud(t, base, true).ListZones(testCtx(t))
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusUnauthorized || len(ge.Errors) != 1 || ge.Errors[0].Reason != "required" {
		t.Fatalf("ListZones without credentials = %v, want 401 required", err)
	}
	if c := gce.Classify(err); c != gce.Permanent {
		t.Errorf("class = %v, want Permanent", c)
	}
	if calls := computeCalls(srv); len(calls) != 1 || calls[0] != "compute.zones.list Unauthorized " {
		t.Errorf("Compute calls = %q", calls)
	}
}
