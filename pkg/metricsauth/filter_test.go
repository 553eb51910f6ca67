package metricsauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// apiServer is a fake API server that knows two tokens: "good" (user prometheus, allowed get
// on /metrics) and "other" (user nobody, allowed nothing).
type apiServer struct {
	client                *fake.Clientset
	tokenReviews, reviews atomic.Int32
	fail                  atomic.Bool
	lastSAR               atomic.Pointer[authorizationv1.SubjectAccessReviewSpec]
}

func newAPIServer() *apiServer {
	s := &apiServer{client: fake.NewClientset()}
	users := map[string]string{"good": "prometheus", "other": "nobody"}
	s.client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.tokenReviews.Add(1)
		if s.fail.Load() {
			return true, nil, errors.New("apiserver down")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if u, ok := users[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
				User: authenticationv1.UserInfo{Username: u, UID: "uid-" + u, Groups: []string{"system:authenticated"},
					Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}}}
		}
		return true, tr, nil
	})
	s.client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.reviews.Add(1)
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		s.lastSAR.Store(&sar.Spec)
		nr := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "prometheus" && nr != nil && nr.Path == "/metrics" && nr.Verb == "get"
		return true, sar, nil
	})
	return s
}

func TestFilter(t *testing.T) {
	api := newAPIServer()
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	f, err := New(Config{Client: api.client, AllowTTL: time.Minute, DenyTTL: 10 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h := f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	do := func(method, path, auth string) int {
		req := httptest.NewRequest(method, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no token", "GET", "/metrics", "", http.StatusUnauthorized},
		{"not a bearer token", "GET", "/metrics", "Basic Zm9vOmJhcg==", http.StatusUnauthorized},
		{"empty bearer token", "GET", "/metrics", "Bearer ", http.StatusUnauthorized},
		{"unknown token", "GET", "/metrics", "Bearer nope", http.StatusUnauthorized},
		{"allowed", "GET", "/metrics", "Bearer good", http.StatusOK},
		{"lowercase scheme", "GET", "/metrics", "bearer good", http.StatusOK},
		{"HEAD is get", "HEAD", "/metrics", "Bearer good", http.StatusOK},
		{"other path", "GET", "/other", "Bearer good", http.StatusForbidden},
		{"not allowed", "GET", "/metrics", "Bearer other", http.StatusForbidden},
		{"POST", "POST", "/metrics", "Bearer good", http.StatusMethodNotAllowed},
	} {
		if got := do(tc.method, tc.path, tc.auth); got != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, got, tc.want)
		}
	}
	sar := api.lastSAR.Load()
	if sar.User != "nobody" || sar.UID != "uid-nobody" || len(sar.Groups) != 1 || sar.Extra["k"][0] != "v" ||
		sar.NonResourceAttributes.Verb != "get" || sar.ResourceAttributes != nil {
		t.Errorf("SubjectAccessReview spec = %+v", sar)
	}

	// Decisions are cached: allowed for AllowTTL, refused for DenyTTL.
	trs, sars := api.tokenReviews.Load(), api.reviews.Load()
	do("GET", "/metrics", "Bearer good")
	do("GET", "/metrics", "Bearer other")
	do("GET", "/metrics", "Bearer nope")
	if api.tokenReviews.Load() != trs || api.reviews.Load() != sars {
		t.Errorf("cached decisions asked the API server again: %d→%d token reviews, %d→%d access reviews",
			trs, api.tokenReviews.Load(), sars, api.reviews.Load())
	}
	clk.SetTime(clk.Now().Add(11 * time.Second))
	do("GET", "/metrics", "Bearer good")
	if api.tokenReviews.Load() != trs {
		t.Error("an allowed decision expired before AllowTTL")
	}
	do("GET", "/metrics", "Bearer other")
	if api.tokenReviews.Load() != trs+1 {
		t.Error("a refused decision outlived DenyTTL")
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	do("GET", "/metrics", "Bearer good")
	if api.tokenReviews.Load() != trs+2 {
		t.Error("an allowed decision outlived AllowTTL")
	}

	// API errors answer 500 and are not cached.
	api.fail.Store(true)
	if got := do("GET", "/metrics", "Bearer fresh"); got != http.StatusInternalServerError {
		t.Errorf("TokenReview failing: %d, want 500", got)
	}
	api.fail.Store(false)
	if got := do("GET", "/metrics", "Bearer fresh"); got != http.StatusUnauthorized {
		t.Errorf("after the API server recovered: %d, want 401", got)
	}
}

func TestCacheBounded(t *testing.T) {
	api := newAPIServer()
	f, err := New(Config{Client: api.client, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	h := f.Wrap(http.NotFoundHandler())
	for _, tok := range []string{"a", "b", "c", "d", "e"} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) > 3 {
		t.Errorf("cache holds %d entries, want at most 3", len(f.cache))
	}
}

func TestNewNeedsAClient(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a client succeeded")
	}
}
