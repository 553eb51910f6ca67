package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/negbinding"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
)

// NEGBindingOptions configure NetworkEndpointGroupBindings (pkg/negbinding).
type NEGBindingOptions struct {
	Enabled        bool
	Allow          string
	CleanupTimeout time.Duration
}

// addNEGBindingFlags binds the NetworkEndpointGroupBinding options.
func (o *Options) addNEGBindingFlags(fs *pflag.FlagSet) {
	n := &o.NEGBinding
	fs.BoolVar(&n.Enabled, "enable-negbinding", n.Enabled,
		"Serve NetworkEndpointGroupBindings (networking.gke.io/v1beta1, kubectl get negbinding; GKE's schema): keep the "+
			"endpoints of existing GCE_VM_IP_PORT NEGs (made with Terraform, say) in step with a Service port, creating and "+
			"deleting no NEG. Needs the CRD and its RBAC (manifests/components/negbinding). Off by default, as in GKE.")
	fs.StringVar(&n.Allow, "negbinding-allow", n.Allow,
		"NEG names the bindings of each namespace may bind, comma-separated NAMESPACE=REGEX entries (the regular "+
			"expression matches the whole NEG name; NAMESPACE * is every namespace), e.g. team-a=team-a-.*,shop=shop-web. "+
			"Empty (default): any NEG, since RBAC on the binding objects already says who may bind; a NEG of a "+
			"controller, another binding or the wrong type or network is refused whatever the list says.")
	fs.DurationVar(&n.CleanupTimeout, "negbinding-cleanup-timeout", n.CleanupTimeout,
		"How long a deleted NetworkEndpointGroupBinding waits for the endpoints it attached to be detached before its "+
			"finalizer is removed anyway (Warning CleanupTimedOut), so a binding never blocks its namespace's deletion "+
			"for longer.")
}

// validateNEGBinding checks the NetworkEndpointGroupBinding options.
func (o *Options) validateNEGBinding() []error {
	var errs []error
	n := o.NEGBinding
	if _, err := negbinding.ParseAllowList(n.Allow); err != nil {
		errs = append(errs, fmt.Errorf("--negbinding-allow: %w", err))
	}
	if n.CleanupTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--negbinding-cleanup-timeout must be positive, got %s", n.CleanupTimeout))
	}
	if n.Enabled && o.NonGCPMode() {
		errs = append(errs, errors.New("--enable-negbinding binds GCE_VM_IP_PORT NEGs of nodes on GCE; it cannot be "+
			"used with --neg-type=non-gcp"))
	}
	return errs
}

// negBindings is the NetworkEndpointGroupBinding part of a running controller (nil ctrl when
// disabled): its informer runs on every replica (the webhook reads bound NEGs), its controller
// under leader election beside the NEG controller, and it tells the readiness reflector when a
// Service's bound NEGs change.
type negBindings struct {
	ctrl      *negbinding.Controller
	reflector atomic.Pointer[negready.Reflector]
}

// newNEGBindings creates the binding controller on factory (before it starts), or returns an
// empty negBindings when disabled (or without a dynamic client).
func newNEGBindings(ctx context.Context, o *Options, cl Clients, factory informers.SharedInformerFactory, cloud gce.Cloud,
	budgetShort func() bool, env Environment, clusterUID string, queueMetrics workqueue.MetricsProvider) (*negBindings, error) {
	nb := &negBindings{}
	logger := klog.FromContext(ctx)
	if !o.NEGBinding.Enabled {
		return nb, nil
	}
	if cl.Dynamic == nil {
		logger.Info("NetworkEndpointGroupBindings are disabled: no dynamic client")
		return nb, nil
	}
	allow, _ := negbinding.ParseAllowList(o.NEGBinding.Allow) // checked by Validate
	ctrl, err := negbinding.New(negbinding.Config{
		Dynamic:         cl.Dynamic,
		Client:          negbinding.NewClient(cl.Dynamic, cl.Kube.Discovery()),
		KubeClient:      cl.Kube,
		EventClient:     cl.Events,
		Informers:       factory,
		Cloud:           cloud,
		ClusterUID:      clusterUID,
		ClusterName:     env.ClusterName,
		Network:         gce.NetworkURL(env.Project, env.Network),
		Subnetwork:      gce.SubnetworkURL(env.Project, env.Region, env.Subnetwork),
		Allow:           allow,
		CleanupTimeout:  o.NEGBinding.CleanupTimeout,
		ResyncPeriod:    o.ResyncPeriod,
		NEGVerifyPeriod: negVerifyPeriod(o.NEGVerifyPeriod),
		CallInterval:    o.NEGCallInterval,
		Quiet:           o.NEGQuietPeriod,
		BudgetShort:     budgetShort,
		SyncDelay:       o.SyncDelay,
		Workers:         o.ConcurrentSyncs,
		QueueMetrics:    queueMetrics,
		OnBoundChange:   nb.boundChanged,
		DualStackNEG:    o.DualStack.Enable,
		IPv6OnlyNEG:     o.DualStack.IPv6Only,
		MigrationPause:  o.DualStack.migrationPause(),
	})
	if err != nil {
		return nil, err
	}
	nb.ctrl = ctrl
	logger.Info("NetworkEndpointGroupBindings are enabled", "allow", allow.String(), "cleanupTimeout", o.NEGBinding.CleanupTimeout)
	return nb, nil
}

// start starts the binding informer (every replica).
func (nb *negBindings) start(ctx context.Context) {
	if nb.ctrl != nil {
		nb.ctrl.Start(ctx)
	}
}

// binder returns the bound NEGs for the readiness gates (nil when disabled).
func (nb *negBindings) binder() negready.Binder {
	if nb.ctrl == nil {
		return nil
	}
	return func(namespace string) []negready.BoundNEG {
		var out []negready.BoundNEG
		for _, b := range nb.ctrl.Bound(namespace) {
			out = append(out, negready.BoundNEG{Service: b.Service, Port: b.Port, Zone: b.NEG.Zone, Name: b.NEG.Name})
		}
		return out
	}
}

// boundChanged tells the reflector (once it exists) that a Service's bound NEGs may have
// changed.
func (nb *negBindings) boundChanged(namespace, service string) {
	if r := nb.reflector.Load(); r != nil {
		r.ServiceChanged(namespace, service)
	}
}

// wrap returns run with the binding controller running beside it; both stop when either
// returns.
func (nb *negBindings) wrap(run func(context.Context) error) func(context.Context) error {
	if nb.ctrl == nil {
		return run
	}
	return func(parent context.Context) error {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		var wg sync.WaitGroup
		var bindErr error
		wg.Go(func() {
			bindErr = nb.ctrl.Run(ctx)
			cancel()
		})
		err := run(ctx)
		cancel()
		wg.Wait()
		if err == nil && bindErr != nil && parent.Err() == nil {
			err = bindErr
		}
		return err
	}
}
