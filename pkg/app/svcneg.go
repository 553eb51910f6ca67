package app

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// dynamicClient returns the client ServiceNetworkEndpointGroups and NetworkEndpointGroupBindings
// are read and written with (nil when both are disabled). It shares the main client's rate
// limits.
func dynamicClient(cfg *rest.Config, o *Options) (dynamic.Interface, error) {
	if !o.EnableSvcNEG && !o.NEGBinding.Enabled {
		return nil, nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	cfg.UserAgent = UserAgent
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the dynamic Kubernetes client: %w", err)
	}
	return c, nil
}

// svcNEGWriter returns the ServiceNetworkEndpointGroup writer of the controller, or nil when
// they are disabled (--enable-svcneg=false, e.g. where GKE's own controller owns the CRD) or no
// dynamic client was given. Its objects are listed again every maxAge.
func svcNEGWriter(ctx context.Context, o *Options, cl Clients, maxAge time.Duration) controller.SvcNEGWriter {
	logger := klog.FromContext(ctx)
	if !o.EnableSvcNEG {
		logger.Info("ServiceNetworkEndpointGroups are disabled (--enable-svcneg=false)")
		return nil
	}
	if cl.Dynamic == nil {
		logger.Info("ServiceNetworkEndpointGroups are disabled: no dynamic client")
		return nil
	}
	w, err := svcneg.NewWriter(svcneg.WriterConfig{Client: svcneg.NewClient(cl.Dynamic, cl.Kube.Discovery()), ResyncPeriod: maxAge})
	if err != nil {
		logger.Error(err, "ServiceNetworkEndpointGroups are disabled")
		return nil
	}
	return w
}
