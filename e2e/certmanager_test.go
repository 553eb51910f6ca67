//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/test/objects"
)

// certManagerPair plays cert-manager's part: a CA and a serving certificate for 127.0.0.1 it
// signed, PEM-encoded as cert-manager writes them into a kubernetes.io/tls Secret.
func certManagerPair(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cert-manager test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestReadinessWebhookWithCertManager: when the MutatingWebhookConfiguration asks cert-manager
// for its caBundle (cert-manager.io/inject-ca-from), the controller serves the certificate
// found in its Secret and writes neither the Secret nor the caBundle; the real kube-apiserver
// trusts it through the injected bundle and the webhook adds the gate. cert-manager itself is
// not installed: the test writes the Secret and the caBundle as its Certificate and CA
// injector would.
func TestReadinessWebhookWithCertManager(t *testing.T) {
	ctx := ctxFor(t)
	secrets := env.Kube.CoreV1().Secrets("neg-controller")
	secretName := readiness.DefaultCertSecret
	caPEM, certPEM, keyPEM := certManagerPair(t)
	// The configuration first: from then on any running controller leaves the Secret alone.
	port := freePort(t)
	mwc := webhookConfiguration(t, port)
	mwc.Annotations = map[string]string{readiness.CertManagerInjectAnnotation: "neg-controller/neg-controller-webhook"}
	mwc.Webhooks[0].ClientConfig.CABundle = caPEM // what cert-manager's CA injector writes
	createWebhookConfiguration(t, mwc)
	// Whatever an earlier controller generated goes; cert-manager owns the Secret now.
	if err := secrets.Delete(ctx, secretName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: "neg-controller",
			Annotations: map[string]string{"cert-manager.io/certificate-name": "neg-controller-webhook"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, readiness.KeyCACert: caPEM},
	}
	created, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Hand the Secret back to the controller's own certificate management.
		_ = secrets.Delete(context.Background(), secretName, metav1.DeleteOptions{})
	})

	startWebhookController(t, port, time.Minute)

	ns := labelledNamespace(t)
	createService(t, ns, "web", "web", standalone80, 80)
	waitNEGName(t, env.Kube, ns, "web")
	// The webhook may need a moment to load the certificate; pods created before it serves are
	// admitted without the gate (failurePolicy Ignore), so create one pod at a time until one
	// is gated.
	waitFor(t, 60*time.Second, "a pod admitted with the readiness gate", func() (bool, string) {
		pod := objects.Pod(ns, "", map[string]string{objects.AppLabel: "web"}, 8080)
		pod.GenerateName = "web-"
		got, err := env.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, g := range got.Spec.ReadinessGates {
			if g.ConditionType == readiness.GateType {
				return true, ""
			}
		}
		return false, "pod " + got.Name + " admitted without the gate"
	})

	after, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != created.ResourceVersion || !bytes.Equal(after.Data[corev1.TLSCertKey], certPEM) {
		t.Errorf("the controller rewrote cert-manager's Secret (resourceVersion %s → %s)", created.ResourceVersion, after.ResourceVersion)
	}
	cfg, err := env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, caPEM) {
		t.Errorf("the controller changed the caBundle cert-manager injects")
	}
}
