package app

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	negready "github.com/neg-controller/neg-controller/pkg/readiness"
)

// TestSecureMetricsServer: with --metrics-secure, /metrics is HTTPS and needs a token the API
// server accepts for a user allowed to get /metrics; health checks are plain HTTP on their own
// port; the certificate is the one installed (the webhook's), else self-signed.
func TestSecureMetricsServer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kube := fake.NewClientset()
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if tr.Spec.Token == "reader" || tr.Spec.Token == "stranger" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: tr.Spec.Token}}
		}
		return true, tr, nil
	})
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		sar.Status.Allowed = sar.Spec.User == "reader" && sar.Spec.NonResourceAttributes.Path == "/metrics"
		return true, sar, nil
	})
	for _, webhook := range []bool{false, true} {
		o := NewOptions()
		o.MetricsBindAddress, o.MetricsSecure, o.HealthProbeBindAddress = "127.0.0.1:0", true, "127.0.0.1:0"
		o.Readiness.Hosts = "127.0.0.1"
		if !webhook {
			o.Readiness.BindAddress = "0"
		}
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		obs, err := startObservability(ctx, o, kube)
		if err != nil {
			t.Fatal(err)
		}
		if obs.healthAddr == nil || obs.healthAddr.String() == obs.addr.String() {
			t.Fatalf("webhook %v: health checks not on a server of their own: %v", webhook, obs.healthAddr)
		}
		var pool *x509.CertPool // self-signed: not verified
		if webhook {
			pool = x509.NewCertPool()
			// Until the webhook's certificate is installed, handshakes fail.
			if _, err := httpsGet(t, obs, nil, ""); err == nil {
				t.Error("handshake succeeded without a certificate")
			}
			cert, err := negready.SelfSigned([]string{"127.0.0.1"}, timeNow(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			obs.certs.set(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
			leaf, _ := x509.ParseCertificate(cert.Certificate[0])
			pool.AddCert(leaf)
		}
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"forged", 401}, {"stranger", 403}, {"reader", 200}} {
			resp, err := httpsGet(t, obs, pool, tc.token)
			if err != nil {
				t.Fatalf("webhook %v, token %q: %v", webhook, tc.token, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("webhook %v, token %q: %d, want %d", webhook, tc.token, resp.StatusCode, tc.want)
			}
			if tc.want == 200 && (!strings.Contains(string(b), "neg_controller_build_info") || resp.ProtoMajor != 1) {
				t.Errorf("scrape: %s, body lacks neg_controller_build_info:\n%.300s", resp.Proto, b)
			}
		}
		if code, _ := get(t, "http://"+obs.healthAddr.String()+"/healthz"); code != 200 {
			t.Errorf("plain /healthz = %d", code)
		}
		if resp, err := http.Get("http://" + obs.addr.String() + "/metrics"); err == nil {
			if resp.StatusCode < 400 {
				t.Errorf("plain HTTP on the secure port answered %d", resp.StatusCode)
			}
			resp.Body.Close()
		}
		obs.stop()
	}
}

// httpsGet scrapes /metrics over TLS, trusting pool (nil: skip verification) with a token.
func httpsGet(t *testing.T, obs *observability, pool *x509.CertPool, token string) (*http.Response, error) {
	t.Helper()
	tc := &tls.Config{RootCAs: pool, InsecureSkipVerify: pool == nil} //nolint:gosec // the self-signed case
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	req, err := http.NewRequest("GET", "https://"+obs.addr.String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return client.Do(req)
}

func timeNow() time.Time { return time.Now() }
