package app

import (
	"context"
	"net/http"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// dryRunCloud wraps cloud with gce.DryRun when --dry-run is set: GCE mutations are logged and
// counted in neg_controller_dry_run_mutations_total instead of made.
func dryRunCloud(ctx context.Context, o *Options, cloud gce.Cloud, m *metrics.Metrics) gce.Cloud {
	if !o.DryRun {
		return cloud
	}
	klog.FromContext(ctx).Info("Dry run: Compute Engine mutations are logged, not made; Kubernetes writes are sent with dryRun=All")
	return gce.DryRun(cloud, m.ObserveDryRun)
}

// dryRunKubeWrites wraps a Kubernetes client transport so that every write (POST, PUT, PATCH,
// DELETE) carries dryRun=All: the API server validates and answers it but persists nothing.
// Reads are unchanged. The leader election client is never wrapped.
func dryRunKubeWrites(rt http.RoundTripper) http.RoundTripper {
	return dryRunTransport{rt}
}

type dryRunTransport struct{ next http.RoundTripper }

func (t dryRunTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		req = req.Clone(req.Context())
		q := req.URL.Query()
		q.Set("dryRun", "All")
		req.URL.RawQuery = q.Encode()
	}
	return t.next.RoundTrip(req)
}

// dryRunConfig returns cfg with dryRunKubeWrites when --dry-run is set.
func dryRunConfig(cfg *rest.Config, o *Options) *rest.Config {
	if !o.DryRun {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(dryRunKubeWrites)
	return cfg
}
