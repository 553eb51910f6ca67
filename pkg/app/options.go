package app

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/negbinding"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// Options is every setting of the neg-controller binary. NewOptions returns the defaults,
// AddFlags binds them to flags, Validate checks them; nothing else reads flags.
type Options struct {
	// Kubernetes API access.
	Kubeconfig   string
	KubeAPIQPS   float32
	KubeAPIBurst int

	// Compute Engine and cluster identity.
	Project     string
	Region      string
	Network     string
	Subnetwork  string
	ClusterName string
	// NamingUID is --cluster-uid (GKE's flag name): the naming UID generated NEG names embed,
	// not the kube-system Namespace UID written as cluster-uid in NEG descriptions.
	NamingUID   string
	GCEEndpoint string

	// RequireNamespacePrefix refuses custom NEG names not starting with "<namespace>-".
	RequireNamespacePrefix bool
	// EnableNEGPreprovisioning honours the "zones" field of the NEG annotation
	// (--enable-neg-preprovisioning, GKE's flag).
	EnableNEGPreprovisioning bool

	// Backend service wiring (backends.go): --enable-autoneg, --backend-service-allow.
	EnableAutoneg       bool
	BackendServiceAllow string

	// Concurrency and timing.
	ConcurrentSyncs          int
	GCEMaxInFlight           int
	ResyncPeriod             time.Duration
	NEGVerifyPeriod          time.Duration
	GCPeriod                 time.Duration
	GCEOperationPollInterval time.Duration
	GCECallTimeout           time.Duration
	GCEOperationTimeout      time.Duration
	SyncDelay                time.Duration
	NEGCallInterval          time.Duration
	NEGQuietPeriod           time.Duration

	// Running in production (operating.go): leader election, the metrics and health server,
	// logging (component-base's configuration, logging.go), GCE budgets (calls per minute by
	// budget name, gce.BudgetMutations, ...) and per-group caps (group=qps:burst,...), and dry run.
	LeaderElection         LeaderElectionOptions
	MetricsBindAddress     string
	MetricsSecure          bool
	HealthProbeBindAddress string
	EnablePprof            bool
	PprofBindAddress       string
	Logging                *logsapi.LoggingConfiguration
	GCEBudgets             GCEBudgets
	GCERateLimits          string
	DryRun                 bool

	// EnableSvcNEG writes a ServiceNetworkEndpointGroup per NEG name.
	EnableSvcNEG bool

	// Readiness is the pod readiness gate (readiness.go): reflector timeout and mode, webhook.
	Readiness ReadinessOptions

	// Hybrid configures NON_GCP_PRIVATE_IP_PORT NEGs (hybrid.go): --neg-type, zone mapping.
	Hybrid HybridOptions

	// NEGBinding configures NetworkEndpointGroupBindings (negbinding.go): --enable-negbinding.
	NEGBinding NEGBindingOptions

	// DualStack chooses the address families of NEG endpoints (dualstack.go).
	DualStack DualStackOptions
}

// NewOptions returns the default options.
func NewOptions() *Options {
	return &Options{
		KubeAPIQPS:               50,
		KubeAPIBurst:             100,
		EnableAutoneg:            true,
		ConcurrentSyncs:          controller.DefaultConcurrentSyncs,
		GCEMaxInFlight:           gce.DefaultMaxInFlight,
		ResyncPeriod:             10 * time.Minute,
		NEGVerifyPeriod:          controller.DefaultNEGVerifyPeriod,
		GCPeriod:                 controller.DefaultGCPeriod,
		GCEOperationPollInterval: gce.DefaultOperationPollInterval,
		GCECallTimeout:           gce.DefaultCallTimeout,
		GCEOperationTimeout:      gce.DefaultOperationTimeout,
		SyncDelay:                controller.DefaultSyncDelay,
		NEGCallInterval:          controller.DefaultCallInterval,
		NEGQuietPeriod:           plan.DefaultQuiet,
		LeaderElection:           DefaultLeaderElection(),
		MetricsBindAddress:       DefaultMetricsBindAddress,
		PprofBindAddress:         DefaultPprofBindAddress,
		Logging:                  logsapi.NewLoggingConfiguration(),
		GCEBudgets:               DefaultGCEBudgets(),
		EnableSvcNEG:             true,
		Readiness:                DefaultReadiness(),
		Hybrid:                   HybridOptions{NEGType: NEGTypeGCE},
		NEGBinding:               NEGBindingOptions{CleanupTimeout: negbinding.DefaultCleanupTimeout},
		DualStack:                DefaultDualStack(),
	}
}

// AddFlags binds the options to fs. The help texts are the user documentation of the flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file for the cluster to watch. Empty (default) uses the in-cluster configuration "+
			"of the Pod's service account; outside a cluster, $KUBECONFIG is used if set.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Sustained queries per second to the Kubernetes API (events use a separate client with the same budget).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Burst of queries to the Kubernetes API above --kube-api-qps.")

	fs.StringVar(&o.Project, "project", o.Project,
		"Google Cloud project ID that holds the cluster's VMs and where NEGs are created. "+
			"Empty: read from the GCE metadata server.")
	fs.StringVar(&o.Region, "region", o.Region,
		"Region of the cluster (e.g. us-central1); NEGs are created in the zones of this region where nodes run. "+
			"Empty: derived from the zone the metadata server reports.")
	fs.StringVar(&o.Network, "network", o.Network,
		"VPC network of the cluster, set on every NEG created: a name (e.g. default) or a network URL. "+
			"Empty: the network of the metadata server's first interface, else \"default\".")
	fs.StringVar(&o.Subnetwork, "subnetwork", o.Subnetwork,
		"Subnetwork of the cluster's nodes, set on every NEG created: a name in --region or a subnetwork URL. "+
			"Empty: none is set and GCE uses the network's subnetwork for the zone.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName,
		"Name of the cluster, for logs. Empty: the cluster-name attribute of the metadata server, if any.")
	fs.StringVar(&o.NamingUID, "cluster-uid", o.NamingUID,
		"Cluster naming UID embedded in generated NEG names (k8s1-<first 8 chars>-...), lowercase letters and digits. "+
			"Empty: the \"uid\" key of ConfigMap kube-system/ingress-uid; if missing, recovered from the names of this "+
			"cluster's NEGs, or created with 16 random hex characters when it has none, as GKE does. A change of the "+
			"ConfigMap while running stops all GCE changes until it is restored and the controller restarted. "+
			"Set it to the value GKE uses to take over NEGs GKE created.")
	fs.StringVar(&o.GCEEndpoint, "gce-endpoint", o.GCEEndpoint,
		"Base URL of the Compute Engine API (e.g. http://127.0.0.1:8085 for an emulator; /compute/v1/ is appended). "+
			"Empty: the real Google endpoint with Application Default Credentials. With an endpoint and no "+
			"GOOGLE_APPLICATION_CREDENTIALS or GCE_METADATA_HOST, requests are sent without credentials.")

	fs.IntVar(&o.ConcurrentSyncs, "concurrent-syncs", o.ConcurrentSyncs,
		"Number of Services synced in parallel.")
	fs.IntVar(&o.GCEMaxInFlight, "gce-max-in-flight", o.GCEMaxInFlight,
		"Maximum number of Compute Engine API calls in flight at once, across all NEGs and zones (operation waits included).")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod,
		"How often every Service is re-synced, its ServiceNetworkEndpointGroups and backend services read again, to "+
			"repair changes made outside the controller. 0 disables periodic re-syncs.")
	fs.DurationVar(&o.NEGVerifyPeriod, "neg-verify-period", o.NEGVerifyPeriod,
		"How often the endpoints of each NEG are listed in full from GCE, each NEG at its own point between half of "+
			"and the whole period after its last listing. Endpoints attached or detached outside the controller are "+
			"found sooner, every --gc-period, from the NEG sizes in the periodic NEG listing; the full listing repairs "+
			"what sizes cannot show (an endpoint swapped for another). 0 disables it.")
	fs.DurationVar(&o.GCPeriod, "gc-period", o.GCPeriod,
		"How often the NEGs of the project are listed: NEGs created by this cluster that no Service wants any more "+
			"(e.g. of Services deleted while the controller was down) are deleted, NEGs deleted outside the controller "+
			"are re-created, and NEGs whose size differs from the endpoints the controller believes attached are "+
			"listed again and repaired. The first pass runs shortly after start.")
	fs.DurationVar(&o.GCEOperationPollInterval, "gce-operation-poll-interval", o.GCEOperationPollInterval,
		"Minimum time between two polls of the same Compute Engine operation.")
	fs.DurationVar(&o.GCECallTimeout, "gce-call-timeout", o.GCECallTimeout,
		"Timeout of a single Compute Engine API request.")
	fs.DurationVar(&o.GCEOperationTimeout, "gce-operation-timeout", o.GCEOperationTimeout,
		"How long the controller waits for one Compute Engine operation (every poll together) before giving up. "+
			"The operation's outcome is then unknown (GCE may still complete it): the NEG's endpoints are listed "+
			"again before the next call. May be shorter than GCE's 2-minute long poll, which is then cut short.")
	fs.DurationVar(&o.SyncDelay, "sync-delay", o.SyncDelay,
		"How long after an EndpointSlice or node change its Service is synced (0: at once). Calls are coalesced "+
			"per NEG while one is in flight whatever the delay, so a delay only saves syncs (CPU) at the cost of latency.")
	fs.DurationVar(&o.NEGQuietPeriod, "neg-quiet-period", o.NEGQuietPeriod,
		"Once a NEG's pending endpoint changes have stopped changing for this long, they go out without waiting "+
			"for --neg-call-interval (unless the GCE mutation budget is short). Lower it for latency, raise it to "+
			"share calls among more changes.")
	fs.DurationVar(&o.NEGCallInterval, "neg-call-interval", o.NEGCallInterval,
		"Paces attach (and detach) calls on one NEG to one per interval, with a burst of two, so a stream of "+
			"changes shares calls (up to 500 endpoints each); a change to a quiet NEG goes out at once, and the end "+
			"of a stream after --neg-quiet-period. While the GCE mutation budget is short (calls wait for it, or it "+
			"was slowed by rate-limit errors) the pacing is strict.")
	fs.BoolVar(&o.EnableSvcNEG, "enable-svcneg", o.EnableSvcNEG,
		"Write a ServiceNetworkEndpointGroup (networking.gke.io/v1beta1, kubectl get svcneg) per NEG name, with the "+
			"NEGs' ids, selfLinks and Initialized/Synced conditions. The CRD is installed by the manifests, not by "+
			"the controller; without it nothing is written. Set false where GKE's own NEG controller owns that CRD.")
	fs.BoolVar(&o.RequireNamespacePrefix, "require-namespace-prefix", o.RequireNamespacePrefix,
		"Refuse custom NEG names (exposed_ports.<port>.name) that do not start with the Service's namespace and "+
			"a hyphen (\"<namespace>-\"), so teams sharing a cluster cannot claim each other's names (Warning "+
			"InvalidCustomNEGName). Off by default, as in GKE.")
	fs.BoolVar(&o.EnableNEGPreprovisioning, "enable-neg-preprovisioning", o.EnableNEGPreprovisioning,
		"NEG zone pre-provisioning (GKE's flag, off by default as in GKE): honour the \"zones\" field of the NEG "+
			"annotation, e.g. {\"exposed_ports\":{\"80\":{}},\"zones\":[\"*\"]}, which asks for (empty) NEGs in "+
			"the zones listed, or with \"*\" in every zone of --region (listed from GCE at start and every "+
			"--gc-period), besides the zones with nodes. A field naming a zone not in --region is ignored as a whole "+
			"(Warning IgnoreZonePreprovisioningAnnotation). Off, the field is ignored (same Warning), and NEGs "+
			"pre-provisioned earlier are deleted once no node is in their zone and no backend service uses them.")
	o.addOperatingFlags(fs)
	o.addBackendFlags(fs)
	o.addReadinessFlags(fs)
	o.addHybridFlags(fs)
	o.addNEGBindingFlags(fs)
	o.addDualStackFlags(fs)
}

// gceName is a GCE resource name.
var gceName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// namingUIDPattern is what a cluster naming UID may be made of.
var namingUIDPattern = regexp.MustCompile(`^[a-z0-9]+$`)

// validateNamingUID checks a cluster naming UID, from --cluster-uid or ConfigMap
// kube-system/ingress-uid alike: non-empty lowercase letters and digits, so that generated NEG
// names stay valid GCE names.
func validateNamingUID(uid string) error {
	if !namingUIDPattern.MatchString(uid) {
		return fmt.Errorf("must be lowercase letters and digits, got %q", uid)
	}
	return nil
}

// Validate checks the options and returns every problem found.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.ConcurrentSyncs < 1 {
		add("--concurrent-syncs must be at least 1, got %d", o.ConcurrentSyncs)
	}
	if o.GCEMaxInFlight < 1 {
		add("--gce-max-in-flight must be at least 1, got %d", o.GCEMaxInFlight)
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		add("--kube-api-qps must be positive and --kube-api-burst at least 1")
	}
	if o.ResyncPeriod < 0 {
		add("--resync-period must not be negative, got %s", o.ResyncPeriod)
	}
	if o.NEGVerifyPeriod < 0 {
		add("--neg-verify-period must not be negative, got %s", o.NEGVerifyPeriod)
	}
	if o.GCPeriod <= 0 {
		add("--gc-period must be positive, got %s", o.GCPeriod)
	}
	if o.SyncDelay < 0 {
		add("--sync-delay must not be negative, got %s", o.SyncDelay)
	}
	if o.NEGCallInterval <= 0 || o.NEGQuietPeriod <= 0 {
		add("--neg-call-interval and --neg-quiet-period must be positive, got %s and %s", o.NEGCallInterval, o.NEGQuietPeriod)
	}
	if o.GCEOperationPollInterval <= 0 {
		add("--gce-operation-poll-interval must be positive, got %s", o.GCEOperationPollInterval)
	}
	if o.GCECallTimeout <= 0 {
		add("--gce-call-timeout must be positive, got %s", o.GCECallTimeout)
	}
	if o.GCEOperationTimeout <= o.GCEOperationPollInterval {
		add("--gce-operation-timeout must be longer than --gce-operation-poll-interval (%s), got %s",
			o.GCEOperationPollInterval, o.GCEOperationTimeout)
	}
	if o.GCEEndpoint != "" {
		u, err := url.Parse(o.GCEEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("--gce-endpoint must be an http or https URL such as http://127.0.0.1:8085, got %q", o.GCEEndpoint)
		}
	}
	if o.Region != "" && !gceName.MatchString(o.Region) {
		add("--region %q is not a valid region name", o.Region)
	}
	if o.NamingUID != "" {
		if err := validateNamingUID(o.NamingUID); err != nil {
			add("--cluster-uid %w", err)
		}
	}
	errs = append(errs, o.validateOperating()...)
	errs = append(errs, o.validateBackends()...)
	errs = append(errs, o.validateReadiness()...)
	errs = append(errs, o.validateHybrid()...)
	errs = append(errs, o.validateNEGBinding()...)
	errs = append(errs, o.validateDualStack()...)
	return errors.Join(errs...)
}
