package readiness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Secret keys (kubernetes.io/tls plus the CA, as cert-manager writes them) and the annotation
// that hands the caBundle to cert-manager's CA injector.
const (
	KeyCACert  = "ca.crt"
	KeyCAKey   = "ca.key"
	KeyTLSCert = corev1.TLSCertKey
	KeyTLSKey  = corev1.TLSPrivateKeyKey

	CertManagerInjectAnnotation = "cert-manager.io/inject-ca-from"
)

// Defaults of CertConfig.
const (
	DefaultCertValidity   = 365 * 24 * time.Hour
	DefaultCAValidity     = 5 * 365 * 24 * time.Hour
	DefaultRefreshPeriod  = time.Minute
	DefaultWebhookService = "neg-controller-webhook"
	DefaultCertSecret     = "neg-controller-webhook-cert"
)

// CertConfig configures a CertManager.
type CertConfig struct {
	Client kubernetes.Interface
	// Namespace and Name of the Secret.
	Namespace, SecretName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle is kept.
	WebhookConfigName string
	// Hosts are the serving certificate's names: DNS names or IP addresses.
	Hosts []string
	// CertValidity and CAValidity; a certificate is renewed when less than a third of its
	// validity is left.
	CertValidity, CAValidity time.Duration
	// RefreshPeriod between checks of the Secret and the configuration.
	RefreshPeriod time.Duration
	Clock         clock.WithTicker
}

// CertManager keeps the webhook's certificates (see the package documentation).
type CertManager struct {
	cfg     CertConfig
	current atomic.Pointer[tls.Certificate]
}

// NewCertManager returns a CertManager; call Ensure or Run before serving.
func NewCertManager(cfg CertConfig) *CertManager {
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = DefaultCertValidity
	}
	if cfg.CAValidity <= 0 {
		cfg.CAValidity = DefaultCAValidity
	}
	if cfg.RefreshPeriod <= 0 {
		cfg.RefreshPeriod = DefaultRefreshPeriod
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &CertManager{cfg: cfg}
}

// GetCertificate is tls.Config.GetCertificate: the current serving certificate.
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("the webhook has no serving certificate yet")
}

// Run calls Ensure every RefreshPeriod until ctx is done, logging failures.
func (m *CertManager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	t := m.cfg.Clock.NewTicker(m.cfg.RefreshPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if err := m.Ensure(ctx); err != nil {
				logger.Error(err, "Keeping the webhook certificate failed; will retry", "period", m.cfg.RefreshPeriod)
			}
		}
	}
}

// Ensure makes the Secret hold valid certificates (unless cert-manager manages them), loads
// the serving certificate, and keeps the configuration's caBundle.
func (m *CertManager) Ensure(ctx context.Context) error {
	external, err := m.caInjectedByCertManager(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reading the MutatingWebhookConfiguration failed", "name", m.cfg.WebhookConfigName)
	}
	var sec *corev1.Secret
	if external {
		sec, err = m.cfg.Client.CoreV1().Secrets(m.cfg.Namespace).Get(ctx, m.cfg.SecretName, metav1.GetOptions{})
	} else {
		sec, err = m.ensureSecret(ctx)
	}
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(sec.Data[KeyTLSCert], sec.Data[KeyTLSKey])
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", m.cfg.Namespace, m.cfg.SecretName, err)
	}
	m.current.Store(&pair)
	if external || m.cfg.WebhookConfigName == "" {
		return nil
	}
	return m.patchCABundle(ctx, sec.Data[KeyCACert])
}

// ensureSecret creates or renews the Secret; writes are conditional, so concurrent replicas
// converge: the loser of a race (a Conflict on update, AlreadyExists on create) re-reads, up to
// three attempts in a row (retry.OnError with no delay: the winner's write is already there).
func (m *CertManager) ensureSecret(ctx context.Context) (*corev1.Secret, error) {
	var out *corev1.Secret
	var last error
	err := retry.OnError(wait.Backoff{Steps: 3}, raced, func() error {
		out, last = m.ensureSecretOnce(ctx)
		return last
	})
	if err == nil {
		// retry.OnError returns nil when an attempt's error wraps context.Canceled or
		// DeadlineExceeded before any retriable one (wait.Interrupted): keep that error.
		err = last
	}
	if raced(err) {
		return nil, fmt.Errorf("the webhook certificate Secret keeps changing; will retry: %w", err)
	}
	return out, err
}

// raced reports whether err means another writer changed the Secret first.
func raced(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }

// ensureSecretOnce reads the Secret and creates or renews it once.
func (m *CertManager) ensureSecretOnce(ctx context.Context) (*corev1.Secret, error) {
	secrets := m.cfg.Client.CoreV1().Secrets(m.cfg.Namespace)
	sec, err := secrets.Get(ctx, m.cfg.SecretName, metav1.GetOptions{})
	notFound := apierrors.IsNotFound(err)
	if err != nil && !notFound {
		return nil, err
	}
	var data map[string][]byte
	if !notFound {
		data = sec.Data
	}
	fresh, changed, err := m.renew(data)
	if err != nil {
		return nil, err
	}
	if !changed {
		return sec, nil
	}
	if notFound {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: m.cfg.SecretName, Namespace: m.cfg.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "neg-controller"}},
			Type: corev1.SecretTypeTLS, Data: fresh}
		out, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
		if err == nil {
			klog.FromContext(ctx).Info("Created the webhook certificate", "secret", klog.KObj(sec), "hosts", m.cfg.Hosts)
		}
		return out, err
	}
	sec = sec.DeepCopy()
	sec.Data = fresh
	out, err := secrets.Update(ctx, sec, metav1.UpdateOptions{})
	if err == nil {
		klog.FromContext(ctx).Info("Renewed the webhook certificate", "secret", klog.KObj(sec), "hosts", m.cfg.Hosts)
	}
	return out, err
}

// renew returns the Secret data with the CA and serving certificate renewed where needed.
func (m *CertManager) renew(data map[string][]byte) (map[string][]byte, bool, error) {
	now := m.cfg.Clock.Now()
	ca, caKey, caOK := parseCA(data, now, m.cfg.CAValidity)
	out := map[string][]byte{}
	changed := false
	caPEM := data[KeyCACert]
	if !caOK {
		var err error
		ca, caKey, err = newCA(now, m.cfg.CAValidity)
		if err != nil {
			return nil, false, err
		}
		// Keep the previous CA in the bundle while it is valid, so replicas still serving a
		// certificate it signed stay trusted during the rotation.
		caPEM = append(pemCert(ca.Raw), stillValid(data[KeyCACert], now)...)
		changed = true
	}
	out[KeyCACert] = caPEM
	out[KeyCAKey] = pemKey(caKey)
	if !changed && serving(data, ca, m.cfg.Hosts, now, m.cfg.CertValidity) {
		return data, false, nil
	}
	certPEM, keyPEM, err := newServing(ca, caKey, m.cfg.Hosts, now, m.cfg.CertValidity)
	if err != nil {
		return nil, false, err
	}
	out[KeyTLSCert], out[KeyTLSKey] = certPEM, keyPEM
	return out, true, nil
}

// fresh reports whether a certificate has more than a third of validity left.
func fresh(c *x509.Certificate, now time.Time, validity time.Duration) bool {
	return now.After(c.NotBefore) && c.NotAfter.Sub(now) > validity/3
}

// parseCA returns the Secret's CA if it is usable and fresh.
func parseCA(data map[string][]byte, now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, bool) {
	b, _ := pem.Decode(data[KeyCACert])
	k, _ := pem.Decode(data[KeyCAKey])
	if b == nil || k == nil {
		return nil, nil, false
	}
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !ca.IsCA || !fresh(ca, now, validity) {
		return nil, nil, false
	}
	key, err := x509.ParseECPrivateKey(k.Bytes)
	if err != nil {
		return nil, nil, false
	}
	return ca, key, true
}

// serving reports whether the Secret's serving certificate is signed by ca, names exactly
// hosts and is fresh.
func serving(data map[string][]byte, ca *x509.Certificate, hosts []string, now time.Time, validity time.Duration) bool {
	if _, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey]); err != nil {
		return false
	}
	b, _ := pem.Decode(data[KeyTLSCert])
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil || c.CheckSignatureFrom(ca) != nil || !fresh(c, now, validity) {
		return false
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	want := slices.Clone(hosts)
	slices.Sort(names)
	slices.Sort(want)
	return slices.Equal(names, want)
}

// stillValid returns the certificates of a PEM bundle that have not expired.
func stillValid(bundle []byte, now time.Time) []byte {
	var out []byte
	for {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && now.Before(c.NotAfter) {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: "neg-controller-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// SelfSigned returns a self-signed serving certificate for hosts (DNS names or IPs), valid for
// validity from now: for a TLS server that has no CA of its own (the secured metrics endpoint
// without the webhook).
func SelfSigned(hosts []string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	certPEM, keyPEM, err := newServing(nil, nil, hosts, now, validity)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return &cert, err
}

// newServing issues a serving certificate for hosts signed by ca, or self-signed when ca is nil.
func newServing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: firstOr(hosts, "neg-controller-webhook")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	parent, signer := ca, any(caKey)
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), pemKey(key), nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(k *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalECPrivateKey(k) // cannot fail for a P-256 key
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// caInjectedByCertManager reports whether the configuration asks cert-manager for its caBundle.
func (m *CertManager) caInjectedByCertManager(ctx context.Context) (bool, error) {
	if m.cfg.WebhookConfigName == "" {
		return false, nil
	}
	mwc, err := m.cfg.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.cfg.WebhookConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil // reported by patchCABundle
	}
	if err != nil {
		return false, err
	}
	_, ok := mwc.Annotations[CertManagerInjectAnnotation]
	return ok, nil
}

// patchCABundle sets ca as the caBundle of every webhook of the configuration that differs,
// with a JSON patch that tests each webhook's name first (so a concurrent reorder fails
// instead of writing the wrong entry).
func (m *CertManager) patchCABundle(ctx context.Context, ca []byte) error {
	api := m.cfg.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := api.Get(ctx, m.cfg.WebhookConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(2).Info("The MutatingWebhookConfiguration does not exist; no caBundle to keep", "name", m.cfg.WebhookConfigName)
		return nil
	}
	if err != nil {
		return err
	}
	var ops []map[string]any
	for i, wh := range mwc.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, ca) {
			continue
		}
		ops = append(ops,
			map[string]any{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": wh.Name},
			map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": ca})
	}
	if len(ops) == 0 {
		return nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if _, err := api.Patch(ctx, m.cfg.WebhookConfigName, types.JSONPatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patching the caBundle of MutatingWebhookConfiguration %s: %w", m.cfg.WebhookConfigName, err)
	}
	klog.FromContext(ctx).Info("Updated the caBundle of the MutatingWebhookConfiguration", "name", m.cfg.WebhookConfigName)
	return nil
}

// ServerConfig configures Serve.
type ServerConfig struct {
	// Address to listen on (host:port).
	Address string
	Webhook *Webhook
	Certs   *CertManager
}

// Serve listens on cfg.Address (opened before it returns, so a taken port fails at once) and
// serves the webhook over TLS with the CertManager's current certificate until ctx is done.
func Serve(ctx context.Context, cfg ServerConfig) (net.Addr, <-chan struct{}, error) {
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MutatePath, cfg.Webhook)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cfg.Certs.GetCertificate}}
	logger := klog.FromContext(ctx)
	logger.Info("Serving the readiness gate webhook", "address", ln.Addr().String(), "path", MutatePath)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Webhook server failed")
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), done, nil
}
