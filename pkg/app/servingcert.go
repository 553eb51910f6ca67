package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// certSource is the certificate of the metrics server with --metrics-secure: the readiness gate
// webhook's serving certificate (kept by the controller, or by cert-manager, in Secret
// --webhook-cert-secret, signed by the CA in its ca.crt and naming the webhook Service), which
// startReadiness installs; or, with the webhook disabled, a self-signed certificate made at
// start, as controller-runtime does without a certificate directory (scrapers then skip
// verification).
type certSource struct {
	mu  sync.RWMutex
	get func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// newCertSource returns the source: self-signed at once when the webhook is disabled, else
// empty until set.
func newCertSource(o *Options) (*certSource, error) {
	c := &certSource{}
	if o.Readiness.BindAddress != "0" {
		return c, nil
	}
	cert, err := selfSignedCert(o.Readiness.hosts(), time.Now())
	if err != nil {
		return nil, fmt.Errorf("self-signed serving certificate: %w", err)
	}
	c.set(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	return c, nil
}

// set installs the function that returns the current certificate.
func (c *certSource) set(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get = get
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certSource) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	get := c.get
	c.mu.RUnlock()
	if get == nil {
		return nil, errors.New("the serving certificate is not ready yet")
	}
	return get(h)
}

// selfSignedCert returns a self-signed ECDSA certificate for hosts (DNS names or IPs), valid
// for a year.
func selfSignedCert(hosts []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "neg-controller-metrics"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
