package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/backends"
	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// addBackendFlags binds the backend service wiring options.
func (o *Options) addBackendFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.EnableAutoneg, "enable-autoneg", o.EnableAutoneg,
		"Keep backend services in step with the NEGs of Services annotated controller.autoneg.dev/neg "+
			"(gke-autoneg-controller's format) and write controller.autoneg.dev/neg-status. Set false when "+
			"gke-autoneg-controller runs in the cluster.")
	fs.StringVar(&o.BackendServiceAllow, "backend-service-allow", o.BackendServiceAllow,
		"Backend services the controller may modify, comma-separated: regular expressions matched in full against "+
			"the name (e.g. web-bs or team-a-.*), or against global/NAME or REGION/NAME when they contain a slash. "+
			"Empty (default): none; every reference is refused with a BackendServiceNotAllowed event. \".*\" allows any "+
			"backend service the controller's credentials can edit, as gke-autoneg-controller does.")
}

// validateBackends checks the backend service wiring options.
func (o *Options) validateBackends() []error {
	if _, err := backends.ParseAllowList(strings.Split(o.BackendServiceAllow, ",")); err != nil {
		return []error{errors.New("--backend-service-allow: " + err.Error())}
	}
	return nil
}

// backendsConfig returns the backend service reconciler's own settings — the adapter, project,
// region and allow-list — or nil when wiring is disabled (newBackends completes them). With
// --dry-run, backend service updates are logged and reported to observeDryRun instead of made.
// Updates go through fence (if not nil).
func backendsConfig(ctx context.Context, o *Options, env Environment, cloud *gce.Compute, fence *gce.Fence,
	observeDryRun func(string)) *backends.Config {
	if !o.EnableAutoneg {
		return nil
	}
	allow, _ := backends.ParseAllowList(strings.Split(o.BackendServiceAllow, ",")) // checked by Validate
	logger := klog.FromContext(ctx)
	if allow.Empty() {
		logger.Info("Backend service wiring is on but --backend-service-allow is empty: controller.autoneg.dev/neg references are refused")
	} else {
		logger.Info("Backend service wiring is on", "allow", allow.String())
	}
	var bs gce.BackendServices = cloud
	if o.DryRun {
		bs = gce.DryRunBackendServices(cloud, observeDryRun)
	}
	if fence != nil {
		bs = fence.BackendServices(bs)
	}
	return &backends.Config{Cloud: bs, Project: cloud.Project(), Region: env.Region, Allow: allow}
}

// newBackends returns the controller's factory of the backend service reconciler bc configures,
// or nil when bc is (wiring disabled). The reconciler shares the controller's Kubernetes client,
// resync period, retry policy and queue metrics; the controller adds the hooks only it has (its
// warning memory for events, its queue for the Services whose NEGs the reconciler released).
func newBackends(bc *backends.Config, kube kubernetes.Interface, resync time.Duration, retry backoff.Policy,
	queues workqueue.MetricsProvider) func(controller.BackendHooks) (controller.BackendServices, error) {
	if bc == nil {
		return nil
	}
	return func(h controller.BackendHooks) (controller.BackendServices, error) {
		cfg := *bc
		cfg.KubeClient, cfg.ResyncPeriod, cfg.QueueMetrics = kube, resync, queues
		cfg.RetryBase, cfg.RetryMax, cfg.RetryLater = retry.Base, retry.Max, retry.Later
		cfg.Events, cfg.OnReleased = h.Events, h.Requeue
		r, err := backends.NewReconciler(cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}
