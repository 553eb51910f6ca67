package readiness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"
)

func testMWC(annotations map[string]string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "neg-controller", Annotations: annotations},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.example.com"}, {Name: "b.example.com"}},
	}
}

func leaf(t *testing.T, m *CertManager) *x509.Certificate {
	t.Helper()
	c, err := m.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestCertManager(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(testMWC(nil))
	clock := clocktesting.NewFakeClock(time.Now())
	cfg := CertConfig{Client: kube, Namespace: "neg-controller", SecretName: DefaultCertSecret, WebhookConfigName: "neg-controller",
		Hosts: []string{"127.0.0.1", "svc.neg-controller.svc"}, Clock: clock}
	m := NewCertManager(cfg)
	if _, err := m.GetCertificate(nil); err == nil {
		t.Error("a certificate before Ensure")
	}
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec, err := kube.CoreV1().Secrets("neg-controller").Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mwc, _ := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "neg-controller", metav1.GetOptions{})
	for _, wh := range mwc.Webhooks {
		if string(wh.ClientConfig.CABundle) != string(sec.Data[KeyCACert]) {
			t.Errorf("webhook %s caBundle not the Secret's CA", wh.Name)
		}
	}
	// The serving certificate verifies against the caBundle for each host.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mwc.Webhooks[0].ClientConfig.CABundle)
	cert := leaf(t, m)
	for _, h := range cfg.Hosts {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h, CurrentTime: clock.Now()}); err != nil {
			t.Errorf("verify for %s: %v", h, err)
		}
	}
	// A second replica (or the next refresh) changes nothing.
	rv := sec.ResourceVersion
	m2 := NewCertManager(cfg)
	if err := m2.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec, _ = kube.CoreV1().Secrets("neg-controller").Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if sec.ResourceVersion != rv || leaf(t, m2).SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Error("a second Ensure rewrote a fresh certificate")
	}
	// Near expiry the serving certificate is renewed under the same CA.
	oldCA := string(sec.Data[KeyCACert])
	clock.Step(DefaultCertValidity * 3 / 4)
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := leaf(t, m)
	if renewed.SerialNumber.Cmp(cert.SerialNumber) == 0 || !renewed.NotAfter.After(cert.NotAfter) {
		t.Error("the serving certificate was not renewed")
	}
	sec, _ = kube.CoreV1().Secrets("neg-controller").Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if string(sec.Data[KeyCACert]) != oldCA {
		t.Error("the CA changed although it is fresh")
	}
	// Near the CA's expiry, a new CA; the bundle keeps the old one while it is valid.
	clock.Step(DefaultCAValidity * 3 / 4)
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec, _ = kube.CoreV1().Secrets("neg-controller").Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if n := strings.Count(string(sec.Data[KeyCACert]), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("bundle holds %d CAs, want new and old", n)
	}
	// Changed host names re-issue the certificate.
	cfg.Hosts = []string{"other.example.com"}
	m3 := NewCertManager(cfg)
	if err := m3.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leaf(t, m3).DNSNames; len(got) != 1 || got[0] != "other.example.com" {
		t.Errorf("DNS names = %v", got)
	}
}

func TestCertManagerLeavesCertManagerAlone(t *testing.T) {
	ctx := context.Background()
	// cert-manager's Secret, made here by a CertManager without configuration.
	seed := fake.NewClientset()
	if err := NewCertManager(CertConfig{Client: seed, Namespace: "ns", SecretName: "s", Hosts: []string{"h"}}).Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	sec, _ := seed.CoreV1().Secrets("ns").Get(ctx, "s", metav1.GetOptions{})
	kube := fake.NewClientset(testMWC(map[string]string{CertManagerInjectAnnotation: "ns/cert"}), sec)
	m := NewCertManager(CertConfig{Client: kube, Namespace: "ns", SecretName: "s", WebhookConfigName: "neg-controller",
		Hosts: []string{"other"}})
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range kube.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("wrote %s %s although cert-manager manages the certificate", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if got := leaf(t, m).DNSNames; got[0] != "h" {
		t.Errorf("serving %v, want cert-manager's certificate", got)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewCertManager(CertConfig{Client: fake.NewClientset(), Namespace: "ns", SecretName: "s", Hosts: []string{"127.0.0.1"}})
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	addr, done, err := Serve(ctx, ServerConfig{Address: "127.0.0.1:0", Webhook: NewWebhook(WebhookConfig{}, klog.Background()), Certs: m})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := m.cfg.Client.CoreV1().Secrets("ns").Get(ctx, "s", metav1.GetOptions{})
	pool := x509.NewCertPool()
	b, _ := pem.Decode(sec.Data[KeyCACert])
	ca, _ := x509.ParseCertificate(b.Bytes)
	pool.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	<-done
}

// TestCertManagerContextCanceled: a Secret read ending with the context (a shutdown right after
// start) is an error from Ensure, not a nil Secret: retry.OnError alone returns nil when the
// first attempt's error wraps context.Canceled (wait.Interrupted counts it as an interruption).
func TestCertManagerContextCanceled(t *testing.T) {
	kube := fake.NewClientset(testMWC(nil))
	kube.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("Get \"https://apiserver/api/v1/namespaces/neg-controller/secrets/x\": %w", context.Canceled)
	})
	m := NewCertManager(CertConfig{Client: kube, Namespace: "neg-controller", SecretName: DefaultCertSecret,
		WebhookConfigName: "neg-controller", Hosts: []string{"127.0.0.1"}, Clock: clocktesting.NewFakeClock(time.Now())})
	if err := m.Ensure(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("Ensure = %v, want the context's error", err)
	}
}
