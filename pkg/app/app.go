package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"cloud.google.com/go/compute/metadata"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/gce"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/pkg/version"
)

// UserAgent is the user agent of the controller's Kubernetes clients.
const UserAgent = "neg-controller"

// Run runs the controller until ctx is done: it connects to Kubernetes and Compute Engine,
// discovers what the options leave empty, reads the cluster's UIDs, and runs the controller.
func Run(ctx context.Context, o *Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	restCfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	leader, err := leaderElectionClient(restCfg, o)
	if err != nil {
		return err
	}
	restCfg = dryRunConfig(restCfg, o) // every other Kubernetes write gets dryRun=All
	kube, events, err := kubeClients(restCfg, o)
	if err != nil {
		return err
	}
	var md Metadata
	if needsMetadata(o) && onGCE(ctx) {
		md = metadata.NewClient(nil)
	}
	dyn, err := dynamicClient(restCfg, o)
	if err != nil {
		return err
	}
	return RunWithClients(ctx, o, Clients{Kube: kube, Events: events, LeaderElection: leader, Metadata: md, Dynamic: dyn})
}

// Clients are the external connections RunWithClients uses.
type Clients struct {
	// Kube is the main Kubernetes client; Events records events (defaults to Kube).
	Kube, Events kubernetes.Interface
	// LeaderElection reads and renews the leader Lease (defaults to Kube).
	LeaderElection kubernetes.Interface
	// Metadata is the GCE metadata server, or nil when it is not to be used.
	Metadata Metadata
	// Dynamic writes ServiceNetworkEndpointGroups and serves NetworkEndpointGroupBindings; nil
	// writes and serves none.
	Dynamic dynamic.Interface
}

// RunWithClients is Run with the Kubernetes clients and metadata server given (tests use fakes).
func RunWithClients(ctx context.Context, o *Options, cl Clients) error {
	if err := o.Validate(); err != nil {
		return err
	}
	obs, err := startObservability(ctx, o, cl.Kube)
	if err != nil {
		return err
	}
	defer obs.stop()
	env, err := Discover(ctx, o, cl.Metadata)
	if err != nil {
		return err
	}
	g, stopGuard, err := connectGCE(ctx, o, cl, env, obs)
	if err != nil {
		return err
	}
	defer stopGuard()
	hybrid, err := o.controllerConfig(env.Region)
	if err != nil {
		return err
	}
	factory := newInformerFactory(cl.Kube, o.ResyncPeriod)
	// NEG calls, the controller's and the bindings', go through the fence (and are only logged
	// with --dry-run).
	g.negCloud = g.fence.Cloud(dryRunCloud(ctx, o, g.cloud, obs.metrics))
	ctrl, err := newController(ctx, o, cl, g, obs, factory, hybrid)
	if err != nil {
		return err
	}
	bindings, err := newNEGBindings(ctx, o, cl, factory, g.negCloud, g.cloud.MutationsShort, env, g.clusterUID,
		obs.metrics.QueueProvider())
	if err != nil {
		return err
	}
	gate, err := startReadiness(ctx, o, cl, factory, g.cloud, obs,
		negready.Placement{NonGCPMode: hybrid.NonGCPMode, Zones: hybrid.Zones}, bindings.binder())
	if err != nil {
		return err
	}
	bindings.reflector.Store(gate.reflector)
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	bindings.start(ctx)
	return runController(ctx, o, cl.leaderElection(), obs, ctrl.HasSynced, gate.wrap(bindings.wrap(ctrl.Run)))
}

// gceSetup is the Compute Engine side of a run: where the cluster is, the adapter, the fence
// every GCE mutation goes through (closed if the naming UID's ConfigMap changes), the cloud the
// NEG controllers use, and the cluster's identity in NEG names and descriptions.
type gceSetup struct {
	env      Environment
	cloud    *gce.Compute
	fence    *gce.Fence
	negCloud gce.Cloud // set by RunWithClients: fenced, dry-run aware
	// clusterUID is the kube-system Namespace UID (NEG descriptions), namingUID the naming UID
	// (generated NEG names).
	clusterUID, namingUID string
}

// connectGCE builds the Compute adapter, reads the cluster's UIDs (the naming UID may need GCE)
// and, unless --naming-uid fixes it, starts the guard that closes the fence when the naming
// UID's ConfigMap changes; stop stops that guard.
func connectGCE(ctx context.Context, o *Options, cl Clients, env Environment, obs *observability) (g *gceSetup, stop func(), err error) {
	gcfg := gceConfig(o, env)
	gcfg.Observer = obs.metrics
	cloud, err := gce.New(ctx, gcfg)
	if err != nil {
		return nil, nil, err
	}
	clusterUID, err := ClusterUID(ctx, cl.Kube)
	if err != nil {
		return nil, nil, err
	}
	// The naming UID needs GCE: when its ConfigMap is missing it is recovered from NEG names.
	namingUID, err := NamingUID(ctx, cl.Kube, cloud, clusterUID, o.NamingUID)
	if err != nil {
		return nil, nil, err
	}
	// Every GCE mutation goes through the fence, closed if the ConfigMap's UID changes.
	fence := gce.NewFence()
	obs.ready.setFence(fence.Err)
	obs.metrics.SetNamingUIDConflict(false)
	stop = func() {}
	if o.NamingUID == "" {
		stop = startNamingUIDGuard(ctx, &namingUIDGuard{client: cl.Kube, uid: namingUID, fence: fence,
			metrics: obs.metrics, clock: clock.RealClock{}, period: namingUIDCheckPeriod})
	}
	obs.metrics.SetCloudState(cloud, cloud.ConfiguredQPS(), o.GCEMaxInFlight)
	klog.FromContext(ctx).Info("Starting neg-controller", "project", env.Project, "region", env.Region, "network", env.Network,
		"subnetwork", env.Subnetwork, "clusterName", env.ClusterName, "namingUID", namingUID, "clusterUID", clusterUID,
		"gceEndpoint", o.GCEEndpoint)
	return &gceSetup{env: env, cloud: cloud, fence: fence, clusterUID: clusterUID, namingUID: namingUID}, stop, nil
}

// newInformerFactory returns the shared informer factory of the controllers: objects trimmed
// for the cache, and only Services re-synced periodically (that drives the verify of their
// NEGs); re-syncing slices and nodes would only burn GCE quota.
func newInformerFactory(kube kubernetes.Interface, resync time.Duration) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(kube, resync,
		informers.WithTransform(trimForCache),
		informers.WithCustomResyncConfig(map[metav1.Object]time.Duration{
			&discoveryv1.EndpointSlice{}: 0,
			&corev1.Node{}:               0,
			&networkingv1.Ingress{}:      0,
		}))
}

// newController builds the NEG controller. The backend service reconciler shares its retry
// policy (the default), resync period and clients (backends.go newBackends).
func newController(ctx context.Context, o *Options, cl Clients, g *gceSetup, obs *observability,
	factory informers.SharedInformerFactory, hybrid controller.HybridConfig) (*controller.Controller, error) {
	env, retry, resync := g.env, backoff.Policy{}.WithDefaults(), resyncMaxAge(o.ResyncPeriod)
	bc := backendsConfig(ctx, o, env, g.cloud, g.fence, obs.metrics.ObserveDryRun)
	return controller.New(controller.Config{
		KubeClient:      cl.Kube,
		EventClient:     cl.Events,
		Informers:       factory,
		Cloud:           g.negCloud,
		ClusterUID:      g.clusterUID,
		NamingUID:       g.namingUID,
		Network:         gce.NetworkURL(env.Project, env.Network),
		Subnetwork:      gce.SubnetworkURL(env.Project, env.Region, env.Subnetwork),
		ConcurrentSyncs: o.ConcurrentSyncs,
		// Custom NEG names must start with "<namespace>-" (teams sharing a cluster).
		RequireNamespacePrefix: o.RequireNamespacePrefix,
		SyncDelay:              o.SyncDelay,
		CallInterval:           o.NEGCallInterval,
		QuietPeriod:            o.NEGQuietPeriod,
		BudgetShort:            g.cloud.MutationsShort,
		GCPeriod:               o.GCPeriod,
		ResyncPeriod:           resync,
		NEGVerifyPeriod:        negVerifyPeriod(o.NEGVerifyPeriod),
		Backoff:                retry,
		NewBackends:            newBackends(bc, cl.Kube, resync, retry, obs.metrics.QueueProvider()),
		Metrics:                obs.metrics,
		SvcNEG:                 svcNEGWriter(ctx, o, cl, resync),
		Hybrid:                 hybrid,
		DualStackNEG:           o.DualStack.Enable,
		IPv6OnlyNEG:            o.DualStack.IPv6Only,
		MigrationPause:         o.DualStack.migrationPause(),
		Preprovisioning: controller.PreprovisionConfig{Enabled: o.EnableNEGPreprovisioning, Region: env.Region,
			RegionZones: g.cloud.RegionZones},
	})
}

// neverPeriod stands for a disabled period.
const neverPeriod = 100 * 365 * 24 * time.Hour

// resyncMaxAge is how old the cached ServiceNetworkEndpointGroups and backend services may get:
// a bit less than the resync period, so every resync reads them again; never without resyncs.
func resyncMaxAge(resync time.Duration) time.Duration {
	if resync <= 0 {
		return neverPeriod
	}
	return resync * 9 / 10
}

// negVerifyPeriod is how old a NEG's cached endpoints may get (--neg-verify-period; 0 = never).
func negVerifyPeriod(d time.Duration) time.Duration {
	if d <= 0 {
		return neverPeriod
	}
	return d
}

// needsMetadata reports whether the metadata server must be asked: for a missing project or
// region, or, when GCE_METADATA_HOST names one, for any missing value. Optional values alone
// never trigger a probe of the real metadata server.
func needsMetadata(o *Options) bool {
	if o.Project == "" || o.Region == "" {
		return true
	}
	return os.Getenv("GCE_METADATA_HOST") != "" && (o.Network == "" || o.ClusterName == "")
}

// gceConfig builds the Compute adapter configuration. Against a custom endpoint without
// credentials (no GOOGLE_APPLICATION_CREDENTIALS and no GCE_METADATA_HOST to get a token from),
// requests are sent unauthenticated.
func gceConfig(o *Options, env Environment) gce.Config {
	withoutAuth := o.GCEEndpoint != "" && os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") == "" &&
		os.Getenv("GCE_METADATA_HOST") == ""
	return gce.Config{
		Project:               env.Project,
		Region:                env.Region,
		Endpoint:              o.GCEEndpoint,
		WithoutAuth:           withoutAuth,
		MaxInFlight:           o.GCEMaxInFlight,
		CallTimeout:           o.GCECallTimeout,
		OperationPollInterval: o.GCEOperationPollInterval,
		OperationTimeout:      o.GCEOperationTimeout,
		Budgets:               o.GCEBudgets.byName(),
		RateLimits:            o.effectiveRateLimits(),
		// GCE records the user agent in the project's audit logs: it names this build.
		UserAgent: version.Get().UserAgent(),
	}
}

// restConfig returns the Kubernetes client configuration: the kubeconfig file if given, else
// the in-cluster configuration, else $KUBECONFIG.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence}
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	return nil, errors.Join(fmt.Errorf("not running in a cluster; pass --kubeconfig"), err)
}

// kubeClients returns the main client and a separate one for events.
func kubeClients(cfg *rest.Config, o *Options) (kube, events kubernetes.Interface, err error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	cfg.UserAgent = UserAgent
	kube, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	ecfg := rest.CopyConfig(cfg)
	ecfg.UserAgent = UserAgent + "/events"
	events, err = kubernetes.NewForConfig(ecfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the Kubernetes events client: %w", err)
	}
	return kube, events, nil
}
