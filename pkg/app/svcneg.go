package app

import (
	"context"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// dynamicClient returns the client ServiceNetworkEndpointGroups are written with (nil when
// --enable-svcneg=false). It shares the main client's rate limits.
func dynamicClient(cfg *rest.Config, o *Options) (dynamic.Interface, error) {
	if !o.EnableSvcNEG {
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

// svcNEGClient returns the ServiceNetworkEndpointGroup client of the controller, or nil when
// they are disabled (--enable-svcneg=false, e.g. where GKE's own controller owns the CRD) or no
// dynamic client was given.
func svcNEGClient(ctx context.Context, o *Options, cl Clients) *svcneg.Client {
	logger := klog.FromContext(ctx)
	if !o.EnableSvcNEG {
		logger.Info("ServiceNetworkEndpointGroups are disabled (--enable-svcneg=false)")
		return nil
	}
	if cl.Dynamic == nil {
		logger.Info("ServiceNetworkEndpointGroups are disabled: no dynamic client")
		return nil
	}
	return svcneg.NewClient(cl.Dynamic, cl.Kube.Discovery())
}
