package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	negready "github.com/neg-controller/neg-controller/pkg/readiness"
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
	cert, err := negready.SelfSigned(o.Readiness.hosts(), time.Now(), 365*24*time.Hour)
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
