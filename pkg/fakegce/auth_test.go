package fakegce_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

const (
	wifAudience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/pool/providers/eks"
	wifSA       = "neg-controller@test-project.iam.gserviceaccount.com"
	jwtType     = "urn:ietf:params:oauth:token-type:jwt"
)

// stsForm is a valid token exchange request for subject token tok.
func stsForm(tok string) url.Values {
	return url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"subject_token_type":   {jwtType},
		"subject_token":        {tok},
		"audience":             {wifAudience},
		"scope":                {"https://www.googleapis.com/auth/cloud-platform"},
	}
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, body := httpDo(t, http.MethodPost, u, form.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%s: %d %q is not JSON", u, resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// exchange gets a federated token for the subject token (the test fails otherwise).
func exchange(t *testing.T, base, subject string) string {
	t.Helper()
	code, out := postForm(t, base+"/v1/token", stsForm(subject))
	if code != 200 || out["token_type"] != "Bearer" || out["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" ||
		out["expires_in"].(float64) < 1 {
		t.Fatalf("STS = %d %v", code, out)
	}
	return out["access_token"].(string)
}

// TestSTS: one row per token exchange rule.
func TestSTS(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("k8s-sa-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := fakegce.NewTestServer(t, fakegce.Config{Auth: &fakegce.AuthConfig{SubjectTokenFile: file, Audience: wifAudience}})
	with := func(k, v string) url.Values {
		f := stsForm("k8s-sa-jwt")
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name  string
		form  url.Values
		code  int
		error string // OAuth error code; "" = success
	}{
		{"valid (file content, blanks trimmed; one hour)", stsForm("k8s-sa-jwt"), 200, ""},
		{"id_token subject type", with("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 200, ""},
		{"wrong subject token", stsForm("someone-else"), 400, "invalid_grant"},
		{"no subject token", with("subject_token", ""), 400, "invalid_request"},
		{"wrong audience", with("audience", "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/x/providers/y"), 400, "invalid_target"},
		{"no audience", with("audience", ""), 400, "invalid_target"},
		{"wrong grant type", with("grant_type", "client_credentials"), 400, "unsupported_grant_type"},
		{"wrong requested token type", with("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"unknown subject token type", with("subject_token_type", "urn:ietf:params:aws:token-type:aws4_request"), 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := postForm(t, base+"/v1/token", tc.form)
			if code != tc.code || (tc.error == "" && (!strings.HasPrefix(out["access_token"].(string), "ya29.") || out["expires_in"] != float64(3600))) ||
				(tc.error != "" && (out["error"] != tc.error || out["error_description"] == "")) {
				t.Errorf("STS = %d %v, want %d %q", code, out, tc.code, tc.error)
			}
		})
	}
	// The file is read at each exchange: a rotated token is accepted at once.
	if err := os.WriteFile(file, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	exchange(t, base, "rotated")
	if code, _ := postForm(t, base+"/v1/token", stsForm("k8s-sa-jwt")); code != 400 {
		t.Errorf("old token after rotation: %d, want 400", code)
	}
}

// TestGenerateAccessToken: impersonation needs an issued bearer token and an allowed account.
func TestGenerateAccessToken(t *testing.T) {
	s, base := fakegce.NewTestServer(t, fakegce.Config{Auth: &fakegce.AuthConfig{ServiceAccounts: []string{wifSA}}})
	fed := exchange(t, base, "any-jwt")
	iam := func(project, email, bearer, body string) (int, map[string]any) {
		hdr := map[string]string{"Content-Type": "application/json"}
		if bearer != "" {
			hdr["Authorization"] = "Bearer " + bearer
		}
		resp, out := httpDo(t, http.MethodPost, base+"/v1/projects/"+project+"/serviceAccounts/"+email+":generateAccessToken", body, hdr)
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%d %q", resp.StatusCode, out)
		}
		return resp.StatusCode, m
	}
	const scope = `{"scope":["https://www.googleapis.com/auth/cloud-platform"],"lifetime":"3600s"}`
	tests := []struct {
		name, project, email, bearer, body string
		code                               int
		status                             string // error status; "" = success
	}{
		{"federated token impersonates", "-", wifSA, fed, scope, 200, ""},
		{"project id instead of -", fakegce.DefaultProject, wifSA, fed, scope, 200, ""},
		{"no bearer", "-", wifSA, "", scope, 401, "UNAUTHENTICATED"},
		{"unknown bearer", "-", wifSA, "ya29.forged", scope, 401, "UNAUTHENTICATED"},
		{"account not allowed", "-", "other@test-project.iam.gserviceaccount.com", fed, scope, 403, "PERMISSION_DENIED"},
		{"no scope", "-", wifSA, fed, `{"lifetime":"3600s"}`, 400, "INVALID_ARGUMENT"},
		{"other project", "other-project", wifSA, fed, scope, 404, "NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := iam(tc.project, tc.email, tc.bearer, tc.body)
			if code != tc.code {
				t.Fatalf("generateAccessToken = %d %v, want %d", code, out, tc.code)
			}
			if tc.status == "" {
				exp, err := time.Parse(time.RFC3339, out["expireTime"].(string))
				if !strings.HasPrefix(out["accessToken"].(string), "ya29.") || err != nil || time.Until(exp) < 59*time.Minute {
					t.Errorf("response %v", out)
				}
				return
			}
			e := out["error"].(map[string]any)
			if e["status"] != tc.status || e["code"] != float64(tc.code) || e["message"] == "" {
				t.Errorf("error %v, want status %s", e, tc.status)
			}
		})
	}
	// The log names both endpoints.
	if c := s.Counts(); c["sts.token"] != 1 || c["iamcredentials.generateAccessToken"] != len(tests) {
		t.Errorf("counts = %v", c)
	}
}

// TestRequireAuth: with Required, Compute answers 401 in Google's shape without a live issued
// token, and serves federated, service-account and metadata tokens, recording the principal.
func TestRequireAuth(t *testing.T) {
	s, base := fakegce.NewTestServer(t, fakegce.Config{Auth: &fakegce.AuthConfig{Required: true, TokenLifetime: 300 * time.Millisecond}})
	zones := base + "/compute/v1/projects/" + project + "/zones"
	fed := exchange(t, base, "any")
	resp, body := httpDo(t, http.MethodPost, base+"/v1/projects/-/serviceAccounts/"+wifSA+":generateAccessToken",
		`{"scope":["https://www.googleapis.com/auth/cloud-platform"]}`, bearerHdr(fed))
	var sa struct{ AccessToken string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &sa) != nil {
		t.Fatalf("generateAccessToken = %d %s", resp.StatusCode, body)
	}
	tests := []struct {
		name      string
		hdr       map[string]string
		code      int
		reason    string
		principal string
	}{
		{"no credentials", nil, 401, "required", ""},
		{"not a bearer token", map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, 401, "required", ""},
		{"forged token", bearerHdr("ya29.forged"), 401, "authError", ""},
		{"service account token", bearerHdr(sa.AccessToken), 200, "", "serviceAccount:" + wifSA},
		{"federated token (direct resource access)", bearerHdr(fed), 200, "", "federated:" + wifAudience},
		{"metadata server token", bearerHdr("fake-token"), 200, "", "metadata:default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetRequests()
			resp, body := httpDo(t, http.MethodGet, zones, "", tc.hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("zones.list = %d %s, want %d", resp.StatusCode, body, tc.code)
			}
			if tc.reason != "" {
				var e struct {
					Error struct {
						Code    int
						Message string
						Errors  []struct{ Reason, Domain string }
					}
				}
				if json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != 401 || len(e.Error.Errors) != 1 ||
					e.Error.Errors[0].Reason != tc.reason || !strings.Contains(e.Error.Message, "authentication credential") {
					t.Errorf("401 body = %s", body)
				}
			}
			if r := s.Requests(); len(r) != 1 || r[0].Principal != tc.principal || r[0].Status != tc.code {
				t.Errorf("request log = %+v", r)
			}
		})
	}
	// Tokens expire.
	time.Sleep(400 * time.Millisecond) // the tokens' lifetime (300 ms) must pass: no event to wait for
	if resp, _ := httpDo(t, http.MethodGet, zones, "", bearerHdr(sa.AccessToken)); resp.StatusCode != 401 {
		t.Errorf("expired token: %d, want 401", resp.StatusCode)
	}
}

// TestAuthOff: without Config.Auth the token endpoints do not exist and Compute needs no token.
func TestAuthOff(t *testing.T) {
	_, base := fakegce.NewTestServer(t, fakegce.Config{})
	if code, _ := postForm(t, base+"/v1/token", stsForm("x")); code != 404 {
		t.Errorf("STS without Auth = %d, want 404", code)
	}
	if resp, _ := httpDo(t, http.MethodGet, base+"/compute/v1/projects/"+project+"/zones", "", nil); resp.StatusCode != 200 {
		t.Errorf("zones.list without Auth = %d", resp.StatusCode)
	}
}
