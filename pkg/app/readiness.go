package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
)

// ReadinessOptions configure the readiness gate: the reflector that sets the condition and
// the webhook that injects the gate.
type ReadinessOptions struct {
	Timeout            time.Duration
	WithoutHealthCheck string
	// Webhook.
	BindAddress       string
	Hosts             string // comma-separated; empty = the webhook Service's DNS names
	ServiceName       string
	ConfigurationName string
	CertSecret        string
	ClusterWide       bool
	// Namespace is the controller's own namespace (Secret; never injected).
	Namespace string
}

// DefaultControllerNamespace is the namespace of manifests/.
const DefaultControllerNamespace = "neg-controller"

// DefaultReadiness returns the defaults.
func DefaultReadiness() ReadinessOptions {
	return ReadinessOptions{
		Timeout:            negready.DefaultTimeout,
		WithoutHealthCheck: string(negready.WithoutHealthCheckWait),
		BindAddress:        ":9443",
		ServiceName:        negready.DefaultWebhookService,
		ConfigurationName:  "neg-controller",
		CertSecret:         negready.DefaultCertSecret,
	}
}

// addReadinessFlags binds the readiness options.
func (o *Options) addReadinessFlags(fs *pflag.FlagSet) {
	r := &o.Readiness
	fs.DurationVar(&r.Timeout, "readiness-gate-timeout", r.Timeout,
		"How long after its creation a pod with the cloud.google.com/load-balancer-neg-ready readiness gate waits "+
			"at most for its endpoint to be healthy; then the condition is set True (reason LoadBalancerNegTimeout), "+
			"so a broken load balancer never blocks rollouts forever (GKE's value).")
	fs.StringVar(&r.WithoutHealthCheck, "readiness-without-health-check", r.WithoutHealthCheck,
		"What gated pods get when their NEG is in no backend service with health checking: \"wait\" (until the "+
			"health check reports them healthy, at most --readiness-gate-timeout) or \"ready\" (True at once, reason "+
			"LoadBalancerNegWithoutHealthCheck, as GKE does; lets rollouts outrun backend wiring).")
	fs.StringVar(&r.BindAddress, "webhook-bind-address", r.BindAddress,
		"Address (host:port) of the HTTPS server of the mutating webhook that adds the readiness gate to pods "+
			"of NEG-enabled Services at creation (path "+negready.MutatePath+"). \"0\" disables the webhook.")
	fs.StringVar(&r.Hosts, "webhook-host", r.Hosts,
		"Comma-separated DNS names or IP addresses of the webhook's serving certificate. Empty: the DNS names of "+
			"Service --webhook-service-name in the controller's namespace.")
	fs.StringVar(&r.ServiceName, "webhook-service-name", r.ServiceName, "Name of the Service in front of the webhook.")
	fs.StringVar(&r.ConfigurationName, "webhook-configuration-name", r.ConfigurationName,
		"MutatingWebhookConfiguration whose caBundle the controller keeps (unless it is annotated "+
			negready.CertManagerInjectAnnotation+"; then cert-manager fills the caBundle and the Secret).")
	fs.StringVar(&r.CertSecret, "webhook-cert-secret", r.CertSecret,
		"Secret (kubernetes.io/tls, with ca.crt) in the controller's namespace that holds the webhook's certificates; "+
			"created and renewed before expiry by the controller.")
	fs.BoolVar(&r.ClusterWide, "inject-readiness-gates-cluster-wide", r.ClusterWide,
		"Add the readiness gate to pods of NEG-enabled Services in every namespace, not only in namespaces labelled "+
			negready.InjectionLabel+"="+negready.InjectionEnabled+". Never in the controller's own namespace.")
	fs.StringVar(&r.Namespace, "controller-namespace", r.Namespace,
		"The controller's own namespace: holds the webhook's certificate Secret; its pods never get the readiness gate. "+
			"Empty: $POD_NAMESPACE, else the service account's namespace, else "+DefaultControllerNamespace+".")
}

// validateReadiness checks the readiness options.
func (o *Options) validateReadiness() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	r := o.Readiness
	if r.Timeout <= 0 {
		add("--readiness-gate-timeout must be positive, got %s", r.Timeout)
	}
	switch negready.WithoutHealthCheck(r.WithoutHealthCheck) {
	case negready.WithoutHealthCheckWait, negready.WithoutHealthCheckReady:
	default:
		add("--readiness-without-health-check must be wait or ready, got %q", r.WithoutHealthCheck)
	}
	if r.BindAddress != "0" {
		if _, port, err := net.SplitHostPort(r.BindAddress); err != nil || port == "" {
			add("--webhook-bind-address must be host:port (e.g. :9443) or 0, got %q", r.BindAddress)
		}
		for _, n := range []struct{ flag, v string }{{"--webhook-service-name", r.ServiceName},
			{"--webhook-configuration-name", r.ConfigurationName}, {"--webhook-cert-secret", r.CertSecret}} {
			if len(validation.IsDNS1123Subdomain(n.v)) > 0 {
				add("%s %q is not a valid name", n.flag, n.v)
			}
		}
	}
	if r.Namespace != "" && len(validation.IsDNS1123Label(r.Namespace)) > 0 {
		add("--controller-namespace %q is not a valid namespace", r.Namespace)
	}
	return errs
}

// namespace returns the controller's own namespace.
func (r ReadinessOptions) namespace() string {
	if r.Namespace != "" {
		return r.Namespace
	}
	if ns := strings.TrimSpace(os.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return DefaultControllerNamespace
}

// hosts returns the serving certificate's names.
func (r ReadinessOptions) hosts() []string {
	var out []string
	for _, h := range strings.Split(r.Hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	if len(out) > 0 {
		return out
	}
	svc, ns := r.ServiceName, r.namespace()
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
}

// readinessGate is the readiness gate's part of a running controller: the reflector (run
// under leader election with the controller) and the webhook (served by every replica, since
// the webhook Service may route to any).
type readinessGate struct {
	reflector *negready.Reflector
}

// startReadiness creates the reflector on factory (before it starts) and, unless disabled,
// starts the webhook server and its certificate upkeep until ctx is done. hybrid places the
// pods of hybrid NEGs as the controller does; bound gives the NEGs of
// NetworkEndpointGroupBindings (nil: none).
func startReadiness(ctx context.Context, o *Options, cl Clients, factory informers.SharedInformerFactory,
	cloud gce.Cloud, obs *observability, hybrid negready.Placement, bound negready.Binder) (*readinessGate, error) {
	r := o.Readiness
	m := negready.NewMetrics(obs.registry)
	refl, err := negready.New(negready.Config{
		KubeClient: cl.Kube, EventClient: cl.Events, Informers: factory, Cloud: cloud,
		Timeout: r.Timeout, WithoutHealthCheck: negready.WithoutHealthCheck(r.WithoutHealthCheck),
		QueueMetrics: obs.metrics.QueueProvider(), Metrics: m, Registerer: obs.registry, Hybrid: hybrid, Bound: bound,
	})
	if err != nil {
		return nil, err
	}
	if r.BindAddress == "0" {
		klog.FromContext(ctx).Info("The readiness gate webhook is disabled (--webhook-bind-address=0)")
		return &readinessGate{reflector: refl}, nil
	}
	svcInf, nsInf := factory.Core().V1().Services().Informer(), factory.Core().V1().Namespaces().Informer()
	wh := negready.NewWebhook(negready.WebhookConfig{
		Services:     factory.Core().V1().Services().Lister(),
		Namespaces:   factory.Core().V1().Namespaces().Lister(),
		ClusterWide:  r.ClusterWide,
		OwnNamespace: r.namespace(),
		Synced:       func() bool { return svcInf.HasSynced() && nsInf.HasSynced() },
		Metrics:      m,
		Bound:        bound,
	}, klog.FromContext(ctx))
	certs := negready.NewCertManager(negready.CertConfig{
		Client: cl.Kube, Namespace: r.namespace(), SecretName: r.CertSecret,
		WebhookConfigName: r.ConfigurationName, Hosts: r.hosts(),
	})
	if _, _, err := negready.Serve(ctx, negready.ServerConfig{Address: r.BindAddress, Webhook: wh, Certs: certs}); err != nil {
		return nil, fmt.Errorf("--webhook-bind-address: %w", err)
	}
	if obs.certs != nil { // --metrics-secure serves the webhook's certificate
		obs.certs.set(certs.GetCertificate)
	}
	go keepCerts(ctx, certs)
	return &readinessGate{reflector: refl}, nil
}

// keepCerts ensures the certificates at once (retrying after 2 s, doubling up to a minute,
// until it works), then keeps them every refresh period.
func keepCerts(ctx context.Context, certs *negready.CertManager) {
	logger := klog.FromContext(ctx)
	for delay := 2 * time.Second; ; delay = min(2*delay, time.Minute) {
		err := certs.Ensure(ctx)
		if err == nil {
			break
		}
		logger.Error(err, "Preparing the webhook certificate failed; will retry", "retryIn", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	certs.Run(ctx)
}

// wrap returns run with the reflector running beside it; both stop when either returns.
func (g *readinessGate) wrap(run func(context.Context) error) func(context.Context) error {
	return func(parent context.Context) error {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		var wg sync.WaitGroup
		var reflErr error
		wg.Go(func() {
			reflErr = g.reflector.Run(ctx)
			cancel()
		})
		err := run(ctx)
		cancel()
		wg.Wait()
		if err == nil && reflErr != nil && parent.Err() == nil {
			err = reflErr
		}
		return err
	}
}
