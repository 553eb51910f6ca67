package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeConfigs fills in the REST configs and writes one self-contained kubeconfig (CA and token
// inline) per identity into WorkDir.
func (c *Cluster) writeConfigs(p *pki) error {
	c.RESTConfig = c.restConfig(p.tokens[adminUser])
	c.ControllerRESTConfig = c.restConfig(p.tokens[controllerUser])
	c.Kubeconfig = filepath.Join(c.WorkDir, "admin.kubeconfig")
	c.ControllerKubeconfig = filepath.Join(c.WorkDir, controllerUser+".kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.APIServerURL, c.CAData, adminUser, p.tokens[adminUser]); err != nil {
		return err
	}
	return writeKubeconfig(c.ControllerKubeconfig, c.APIServerURL, c.CAData, controllerUser, p.tokens[controllerUser])
}

func (c *Cluster) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.APIServerURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		// A private test cluster: client-side throttling only slows tests down.
		QPS:   200,
		Burst: 400,
	}
}

// KubeconfigBytes renders a self-contained kubeconfig for server with the given bearer token.
func KubeconfigBytes(server string, caData []byte, user, token string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["localcluster"] = &clientcmdapi.Context{Cluster: "localcluster", AuthInfo: user}
	cfg.CurrentContext = "localcluster"
	return clientcmd.Write(*cfg)
}

func writeKubeconfig(path, server string, caData []byte, user, token string) error {
	b, err := KubeconfigBytes(server, caData, user, token)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// etcdHealthy checks etcd's /health endpoint.
func etcdHealthy(url string) func(context.Context) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		body, err := get(ctx, client, url+"/health", "")
		if err != nil {
			return err
		}
		if !strings.Contains(strings.ReplaceAll(body, " ", ""), `"health":"true"`) {
			return fmt.Errorf("etcd unhealthy: %s", body)
		}
		return nil
	}
}

// httpOK checks that url answers 200. With caPEM nil the server's certificate is not verified
// (kube-controller-manager serves a self-signed one).
func httpOK(url string, caPEM []byte, token string) func(context.Context) error {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM == nil {
		tlsCfg.InsecureSkipVerify = true // loopback health check of a self-signed server
	} else {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tlsCfg.RootCAs = pool
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		_, err := get(ctx, client, url, token)
		return err
	}
}

func get(ctx context.Context, client *http.Client, url, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
