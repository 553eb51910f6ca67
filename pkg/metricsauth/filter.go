package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults of Config.
const (
	DefaultAllowTTL   = time.Minute
	DefaultDenyTTL    = 10 * time.Second
	DefaultMaxEntries = 1024
	DefaultTimeout    = 10 * time.Second
)

// Config configures a Filter.
type Config struct {
	// Client creates TokenReviews and SubjectAccessReviews. Required.
	Client kubernetes.Interface
	// AllowTTL and DenyTTL are how long an allowed and a refused decision are reused.
	AllowTTL, DenyTTL time.Duration
	// MaxEntries bounds the cache (default DefaultMaxEntries); when full it is emptied.
	MaxEntries int
	// Timeout bounds the API calls of one request (default DefaultTimeout).
	Timeout time.Duration
	// Clock drives cache expiry (default the real clock).
	Clock clock.PassiveClock
}

// Filter authenticates and authorises requests. Create it with New.
type Filter struct {
	cfg Config

	mu    sync.Mutex
	cache map[string]decision
}

// decision is a cached answer: the HTTP status to give (200 = let through).
type decision struct {
	status  int
	user    string
	expires time.Time
}

// New returns a Filter.
func New(cfg Config) (*Filter, error) {
	if cfg.Client == nil {
		return nil, errors.New("metricsauth: a Kubernetes client is required")
	}
	if cfg.AllowTTL <= 0 {
		cfg.AllowTTL = DefaultAllowTTL
	}
	if cfg.DenyTTL <= 0 {
		cfg.DenyTTL = DefaultDenyTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Filter{cfg: cfg, cache: map[string]decision{}}, nil
}

// Wrap returns next guarded by the filter. Only GET and HEAD are served (verb "get").
func (f *Filter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="neg-controller"`)
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		d, err := f.decide(r.Context(), token, "get", r.URL.Path)
		switch {
		case err != nil:
			klog.FromContext(r.Context()).Error(err, "Authorising a metrics request failed", "path", r.URL.Path)
			http.Error(w, "Internal Server Error: authorisation failed", http.StatusInternalServerError)
		case d.status == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="neg-controller"`)
			http.Error(w, "Unauthorized: the token is not valid", http.StatusUnauthorized)
		case d.status == http.StatusForbidden:
			http.Error(w, fmt.Sprintf("Forbidden: user %q may not get %s", d.user, r.URL.Path), http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// bearerToken returns the token of an "Authorization: Bearer …" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// decide returns the cached decision for token, verb and path, or asks the API server.
func (f *Filter) decide(ctx context.Context, token, verb, path string) (decision, error) {
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:]) + " " + verb + " " + path
	now := f.cfg.Clock.Now()
	f.mu.Lock()
	d, ok := f.cache[key]
	f.mu.Unlock()
	if ok && now.Before(d.expires) {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	d, err := f.review(ctx, token, verb, path)
	if err != nil {
		return decision{}, err
	}
	ttl := f.cfg.DenyTTL
	if d.status == http.StatusOK {
		ttl = f.cfg.AllowTTL
	}
	d.expires = now.Add(ttl)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= f.cfg.MaxEntries {
		clear(f.cache)
	}
	f.cache[key] = d
	return d, nil
}

// review asks the API server who the token is (TokenReview) and whether that user may do verb
// on path (SubjectAccessReview).
func (f *Filter) review(ctx context.Context, token, verb, path string) (decision, error) {
	tr, err := f.cfg.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return decision{status: http.StatusUnauthorized}, nil
	}
	u := tr.Status.User
	extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := f.cfg.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		return decision{status: http.StatusForbidden, user: u.Username}, nil
	}
	return decision{status: http.StatusOK, user: u.Username}, nil
}
