package fakegce

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Google authentication, emulated (Config.Auth): the two token endpoints that Application
// Default Credentials of type external_account (Workload Identity Federation) call, beside the
// Compute API, so that the real client libraries can be proven end to end off Google Cloud:
//
//	POST /v1/token                                                  Security Token Service
//	POST /v1/projects/{project}/serviceAccounts/{email}:generateAccessToken   IAM Credentials
//
// In a credential configuration file they are token_url = BASE/v1/token and
// service_account_impersonation_url = BASE/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken
// (real: https://sts.googleapis.com/v1/token and https://iamcredentials.googleapis.com/v1/...).
// With AuthConfig.Required every Compute request needs "Authorization: Bearer T" where T is a
// live token issued here: by the STS (a federated token, for direct resource access), by
// generateAccessToken (a service account's token) or the metadata server's token.
//
// Shapes (request fields, responses, error envelopes) follow RFC 8693 and Google's documented
// APIs; exact error texts and which error the STS picks for which mistake are [unverified].

// Grant and token types of the STS token exchange (RFC 8693, as Google's STS uses them).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// subjectTokenTypes are the subject_token_type values accepted: OIDC tokens (a Kubernetes
// service-account token is a JWT) and the ID-token spelling some providers use.
var subjectTokenTypes = []string{"urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"}

// DefaultTokenLifetime is how long issued tokens live unless AuthConfig.TokenLifetime says
// otherwise (Google's default: one hour).
const DefaultTokenLifetime = time.Hour

// AuthConfig turns on emulated Google authentication (Config.Auth). The zero value serves the
// token endpoints, accepts any subject token, audience and service account, and does not require
// tokens on Compute requests.
type AuthConfig struct {
	// Required rejects Compute requests without a live token issued by the emulator: 401 with
	// reason "required" (no Authorization header) or "authError" (unknown or expired token), as
	// Google APIs answer. The metadata server's token (for ADC on "GCE") stays valid.
	Required bool
	// SubjectToken, when set, is the only subject token the STS accepts, e.g. the content of the
	// projected Kubernetes service-account token the client reads from credential_source.file.
	SubjectToken string
	// SubjectTokenFile, when set, is read at each exchange; its content (surrounding blanks
	// trimmed) is the only subject token accepted. It wins over SubjectToken.
	SubjectTokenFile string
	// Audience, when set, is the only audience accepted: the workload identity pool provider,
	// "//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER".
	Audience string
	// ServiceAccounts, when set, are the service accounts (emails) generateAccessToken issues
	// tokens for; others get 403 PERMISSION_DENIED. Empty: any.
	ServiceAccounts []string
	// TokenLifetime is the lifetime of issued tokens; default DefaultTokenLifetime.
	TokenLifetime time.Duration
}

// tokenInfo is what the emulator knows about a token it issued.
type tokenInfo struct {
	principal string // "federated:<audience>" or "serviceAccount:<email>"
	expires   time.Time
}

// authState holds the issued tokens.
type authState struct {
	cfg    *AuthConfig // nil: token endpoints answer 404, Compute needs no token
	mu     sync.Mutex
	tokens map[string]tokenInfo
}

func (a *authState) lifetime() time.Duration {
	if a.cfg.TokenLifetime > 0 {
		return a.cfg.TokenLifetime
	}
	return DefaultTokenLifetime
}

// issue registers a new random token for principal and returns it with its expiry.
func (a *authState) issue(principal string, now time.Time) (string, time.Time) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "ya29.fakegce-" + hex.EncodeToString(b[:])
	exp := now.Add(a.lifetime())
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, info := range a.tokens { // drop expired ones: the map stays small
		if now.After(info.expires) {
			delete(a.tokens, t)
		}
	}
	a.tokens[tok] = tokenInfo{principal: principal, expires: exp}
	return tok, exp
}

// principal returns who a bearer token belongs to, and whether it is a live token.
func (a *authState) principal(tok string, now time.Time) (string, bool) {
	if tok == fakeToken {
		return "metadata:default", true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	info, ok := a.tokens[tok]
	if !ok || now.After(info.expires) {
		return "", false
	}
	return info.principal, true
}

// bearer returns the token of an "Authorization: Bearer T" header ("" if none).
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Google's texts for missing and bad credentials (seen on every Google API).
const (
	msgMissingCredential = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgInvalidCredential = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)

// checkCompute authenticates a Compute request when tokens are required; it returns the caller's
// principal ("" when not required) or the 401 to answer.
func (a *authState) checkCompute(r *http.Request, now time.Time) (string, *apiError) {
	if a.cfg == nil || !a.cfg.Required {
		return "", nil
	}
	tok := bearer(r)
	if tok == "" {
		return "", &apiError{code: http.StatusUnauthorized, reason: "required", message: msgMissingCredential}
	}
	p, ok := a.principal(tok, now)
	if !ok {
		return "", &apiError{code: http.StatusUnauthorized, reason: "authError", message: msgInvalidCredential}
	}
	return p, nil
}

// authRoutes registers the token endpoints.
func (s *Server) authRoutes() {
	s.mux.HandleFunc("POST /v1/token", s.serveSTS)
	s.mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{call}", s.serveGenerateAccessToken)
}

// stsError answers an OAuth 2.0 error ({"error": code, "error_description": text}, RFC 6749
// §5.2), the shape Google's STS uses.
func stsError(w http.ResponseWriter, status int, code, desc string) int {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	return status
}

// serveSTS is the token exchange: an external subject token for a federated access token.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	rec := s.obs.begin("sts.token", r, "")
	status := http.StatusOK
	defer func() { s.obs.finish(rec, status) }()
	cfg := s.auth.cfg
	if cfg == nil {
		status = stsError(w, http.StatusNotFound, "not_found", "fakegce: authentication is not configured (Config.Auth)")
		return
	}
	if err := r.ParseForm(); err != nil {
		status = stsError(w, http.StatusBadRequest, "invalid_request", "Invalid form body: "+err.Error())
		return
	}
	f := r.PostForm
	want := s.expectedSubjectToken()
	switch {
	case f.Get("grant_type") != grantTokenExchange:
		status = stsError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("Unsupported grant_type %q.", f.Get("grant_type")))
	case f.Get("requested_token_type") != tokenTypeAccess:
		status = stsError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("Invalid requested_token_type %q.", f.Get("requested_token_type")))
	case !slices.Contains(subjectTokenTypes, f.Get("subject_token_type")):
		status = stsError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("Invalid subject_token_type %q.", f.Get("subject_token_type")))
	case f.Get("audience") == "" || (cfg.Audience != "" && f.Get("audience") != cfg.Audience):
		// Google's text for an unknown pool or provider, as users report it.
		status = stsError(w, http.StatusBadRequest, "invalid_target", "The target service indicated by the \"audience\" parameters is invalid. "+
			"This might either be because the pool or provider is disabled or deleted or because it doesn't exist.")
	case f.Get("subject_token") == "":
		status = stsError(w, http.StatusBadRequest, "invalid_request", "Missing subject_token.")
	case want != "" && f.Get("subject_token") != want:
		status = stsError(w, http.StatusBadRequest, "invalid_grant", "The subject token is invalid (fakegce: it is not the configured subject token).")
	default:
		tok, _ := s.auth.issue("federated:"+f.Get("audience"), time.Now())
		writeJSON(w, map[string]any{"access_token": tok, "issued_token_type": tokenTypeAccess, "token_type": "Bearer",
			"expires_in": max(1, int(s.auth.lifetime().Round(time.Second).Seconds()))})
	}
}

// expectedSubjectToken is the configured subject token ("" = any): the file's content, else
// SubjectToken. An unreadable file accepts nothing.
func (s *Server) expectedSubjectToken() string {
	cfg := s.auth.cfg
	if cfg.SubjectTokenFile == "" {
		return cfg.SubjectToken
	}
	data, err := os.ReadFile(cfg.SubjectTokenFile)
	if err != nil || strings.TrimSpace(string(data)) == "" {
		return "\x00unreadable" // matches no token
	}
	return strings.TrimSpace(string(data))
}

// googleError answers the error envelope of Google's newer APIs (IAM Credentials): code,
// message, status and, for permission errors, an ErrorInfo detail.
func googleError(w http.ResponseWriter, code int, status, message string, details ...any) int {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	body := map[string]any{"code": code, "message": message, "status": status}
	if len(details) > 0 {
		body["details"] = details
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
	return code
}

// serveGenerateAccessToken impersonates a service account for the bearer of a token issued
// here (projects/-/serviceAccounts/EMAIL:generateAccessToken).
func (s *Server) serveGenerateAccessToken(w http.ResponseWriter, r *http.Request) {
	rec := s.obs.begin("iamcredentials.generateAccessToken", r, "")
	status := http.StatusOK
	defer func() { s.obs.finish(rec, status) }()
	email, ok := strings.CutSuffix(r.PathValue("call"), ":generateAccessToken")
	if s.auth.cfg == nil || !ok || email == "" || (r.PathValue("project") != "-" && r.PathValue("project") != s.cfg.Project) {
		status = googleError(w, http.StatusNotFound, "NOT_FOUND", "fakegce: no such method: "+r.URL.Path)
		return
	}
	now := time.Now()
	if _, ok := s.auth.principal(bearer(r), now); !ok {
		status = googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgInvalidCredential)
		return
	}
	var body struct {
		Scope     []string `json:"scope"`
		Lifetime  string   `json:"lifetime"`
		Delegates []string `json:"delegates"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Scope) == 0 {
		status = googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument: scope is required.")
		return
	}
	if sas := s.auth.cfg.ServiceAccounts; len(sas) > 0 && !slices.Contains(sas, email) {
		status = googleError(w, http.StatusForbidden, "PERMISSION_DENIED",
			"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
			map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
				"domain": "iam.googleapis.com", "metadata": map[string]string{"permission": "iam.serviceAccounts.getAccessToken"}})
		return
	}
	tok, exp := s.auth.issue("serviceAccount:"+email, now)
	writeJSON(w, map[string]string{"accessToken": tok, "expireTime": exp.UTC().Format(time.RFC3339)})
}
