package app

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

// The options of running in production: leader election, the metrics and health server, log
// format, GCE rate limits and dry run. They are fields of Options; this file holds their
// defaults, flags and validation.

// LeaderElectionOptions configure leader election on a coordination.k8s.io Lease.
type LeaderElectionOptions struct {
	// Enabled runs the controller only while this process holds the Lease.
	Enabled bool
	// Namespace of the Lease; empty = the Pod's namespace (POD_NAMESPACE, else the service
	// account's namespace file), else kube-system.
	Namespace string
	// Name of the Lease.
	Name string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go's leaderelection.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// Defaults of the operating options.
const (
	DefaultLeaseName          = "neg-controller"
	DefaultLeaseNamespace     = "kube-system"
	DefaultMetricsBindAddress = ":8080"
	// DefaultSecureHealthProbeAddress serves /healthz and /readyz with --metrics-secure when
	// --health-probe-bind-address is empty.
	DefaultSecureHealthProbeAddress = ":8081"
	DefaultPprofBindAddress         = "127.0.0.1:6060"
	LogFormatText                   = "text"
	LogFormatJSON                   = "json"
)

// serviceAccountNamespaceFile holds the Pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// DefaultLeaderElection returns the default leader election options (client-go's usual
// 15 s / 10 s / 2 s).
func DefaultLeaderElection() LeaderElectionOptions {
	return LeaderElectionOptions{Enabled: true, Name: DefaultLeaseName,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
}

// leaseNamespace returns the namespace of the Lease: the option, else POD_NAMESPACE, else the
// service account's namespace, else kube-system.
func (l LeaderElectionOptions) leaseNamespace() string {
	if l.Namespace != "" {
		return l.Namespace
	}
	if ns := strings.TrimSpace(os.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return DefaultLeaseNamespace
}

// addOperatingFlags binds the operating options to fs.
func (o *Options) addOperatingFlags(fs *pflag.FlagSet) {
	le := &o.LeaderElection
	fs.BoolVar(&le.Enabled, "leader-elect", le.Enabled,
		"Run the controller only while this process holds a Lease, so that several replicas can run with one "+
			"active (the others stand by and take over within --leader-elect-lease-duration when it dies). "+
			"The process exits when it loses the Lease.")
	fs.StringVar(&le.Namespace, "leader-elect-namespace", le.Namespace,
		"Namespace of the leader election Lease. Empty: the Pod's namespace ($POD_NAMESPACE, else the service "+
			"account's namespace), else kube-system.")
	fs.StringVar(&le.Name, "leader-elect-name", le.Name, "Name of the leader election Lease.")
	fs.DurationVar(&le.LeaseDuration, "leader-elect-lease-duration", le.LeaseDuration,
		"How long standbys wait after the leader's last renewal before taking the Lease over.")
	fs.DurationVar(&le.RenewDeadline, "leader-elect-renew-deadline", le.RenewDeadline,
		"How long the leader keeps trying to renew the Lease before it gives up and exits; less than the lease duration.")
	fs.DurationVar(&le.RetryPeriod, "leader-elect-retry-period", le.RetryPeriod,
		"How often candidates try to acquire, and the leader to renew, the Lease.")

	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address (host:port) of the server for Prometheus metrics (/metrics); plain HTTP, where liveness (/healthz) "+
			"and readiness (/readyz) are served too unless --health-probe-bind-address is set, or HTTPS with "+
			"--metrics-secure. \"0\" disables the server.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"Serve /metrics over HTTPS (with the readiness gate webhook's serving certificate, or a self-signed one when "+
			"the webhook is disabled), and only to requests whose bearer token the API server authenticates "+
			"(TokenReview) for a user allowed to get the non-resource URL /metrics (SubjectAccessReview; the "+
			"ClusterRole neg-controller-metrics-reader grants it): 401 without a valid token, 403 when not allowed. "+
			"Needs create on tokenreviews and subjectaccessreviews (ClusterRole system:auth-delegator). Health "+
			"checks stay plain HTTP on --health-probe-bind-address.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address (host:port) of the plain HTTP server for liveness (/healthz) and readiness (/readyz). Empty: "+
			"on the metrics server, or on "+DefaultSecureHealthProbeAddress+" with --metrics-secure. \"0\" disables them.")
	fs.BoolVar(&o.EnablePprof, "enable-pprof", o.EnablePprof,
		"Serve Go profiling endpoints under /debug/pprof/ on --pprof-bind-address.")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress,
		"Address (host:port) of the Go profiling server of --enable-pprof; a loopback address only "+
			"(kubectl port-forward reaches it).")
	o.addLoggingFlags(fs)
	budgetFlag := func(p *int, flag, what string) {
		fs.IntVar(p, flag, *p, fmt.Sprintf(
			"Compute Engine %s per minute this controller may make: one shared, adaptive budget (0: unlimited). "+
				"Halved after a rate-limit error, it recovers gradually; calls waiting for it are served urgent first "+
				"(a Service's first NEGs and endpoints), background last, and round-robin across Services. "+
				"The default is GCE's default quota of the group; lower it when other clients share the project.", what))
	}
	b := &o.GCEBudgets
	budgetFlag(&b.Mutations, "gce-mutations-per-minute",
		"mutating calls (NEG insert and delete, attach, detach, backend service patch)")
	budgetFlag(&b.Reads, "gce-reads-per-minute", "get calls (NEGs, backend services)")
	budgetFlag(&b.Lists, "gce-lists-per-minute", "list calls (zones, NEGs, the endpoints of a NEG, per page)")
	budgetFlag(&b.OperationReads, "gce-operation-reads-per-minute",
		"operation reads (each mutation's operation waits: at least one per mutation)")
	fs.StringVar(&o.GCERateLimits, "gce-rate-limit", o.GCERateLimits,
		"Extra client-side caps on Compute Engine method groups, as group=qps:burst pairs separated by commas, "+
			"e.g. attach=15:30; a call waits for its group's cap, then for its shared budget (--gce-*-per-minute), "+
			"so a cap can only slow a group down. qps 0: no cap (the default of every group). Groups: "+
			strings.Join(gce.GroupNames(), ", ")+". A cap is halved after rate-limit errors and recovers gradually.")
	fs.BoolVar(&o.DryRun, "dry-run", o.DryRun,
		"Log and count (neg_controller_dry_run_mutations_total) every Compute Engine mutation instead of making it, "+
			"and send Kubernetes writes (neg-status, events) with dryRun=All so they are not persisted. "+
			"The controller believes its own writes, so the log shows what it would do from the current state.")
}

// healthProbeAddress returns the address of a health server of its own, "" when /healthz and
// /readyz are served by the metrics server, or "0" when they are not served.
func (o *Options) healthProbeAddress() string {
	if o.HealthProbeBindAddress == "" && o.MetricsSecure {
		return DefaultSecureHealthProbeAddress
	}
	if o.HealthProbeBindAddress == "" && o.MetricsBindAddress == "0" {
		return "0"
	}
	return o.HealthProbeBindAddress
}

// validateOperating returns the problems of the operating options.
func (o *Options) validateOperating() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if le := o.LeaderElection; le.Enabled {
		if le.Name == "" || len(validation.IsDNS1123Subdomain(le.Name)) > 0 {
			add("--leader-elect-name %q is not a valid Lease name", le.Name)
		}
		if le.Namespace != "" && len(validation.IsDNS1123Label(le.Namespace)) > 0 {
			add("--leader-elect-namespace %q is not a valid namespace", le.Namespace)
		}
		switch {
		case le.RetryPeriod <= 0:
			add("--leader-elect-retry-period must be positive, got %s", le.RetryPeriod)
		case float64(le.RenewDeadline) <= leaderelection.JitterFactor*float64(le.RetryPeriod):
			add("--leader-elect-renew-deadline (%s) must be more than %.1f × --leader-elect-retry-period (%s)",
				le.RenewDeadline, leaderelection.JitterFactor, le.RetryPeriod)
		case le.LeaseDuration <= le.RenewDeadline:
			add("--leader-elect-lease-duration (%s) must be more than --leader-elect-renew-deadline (%s)",
				le.LeaseDuration, le.RenewDeadline)
		}
	}
	if o.MetricsBindAddress != "0" {
		if _, port, err := net.SplitHostPort(o.MetricsBindAddress); err != nil || port == "" {
			add("--metrics-bind-address must be host:port (e.g. :8080) or 0, got %q", o.MetricsBindAddress)
		}
	}
	if h := o.HealthProbeBindAddress; h != "" && h != "0" {
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			add("--health-probe-bind-address must be host:port (e.g. :8081), 0 or empty, got %q", h)
		}
	}
	if o.EnablePprof {
		host, port, err := net.SplitHostPort(o.PprofBindAddress)
		ip := net.ParseIP(host)
		if err != nil || port == "" || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			add("--pprof-bind-address must be a loopback host:port (e.g. 127.0.0.1:6060), got %q", o.PprofBindAddress)
		}
	}
	errs = append(errs, validateLogging(o.Logging)...)
	if _, err := ParseRateLimits(o.GCERateLimits); err != nil {
		errs = append(errs, err)
	}
	for name, n := range o.GCEBudgets.byName() {
		if n < 0 {
			add("the %s budget (--gce-*-per-minute) must be ≥ 0, got %d", name, n)
		}
	}
	return errs
}

// GCEBudgets are the shared Compute Engine budgets in calls per minute (see gce.BudgetRate);
// 0 disables a budget.
type GCEBudgets struct {
	Mutations, Reads, Lists, OperationReads int
}

// DefaultGCEBudgets returns gce.DefaultBudgets.
func DefaultGCEBudgets() GCEBudgets {
	d := gce.DefaultBudgets
	return GCEBudgets{Mutations: d[gce.BudgetMutations], Reads: d[gce.BudgetReads], Lists: d[gce.BudgetLists],
		OperationReads: d[gce.BudgetOperationReads]}
}

// byName returns the budgets by gce budget name (gce.Config.Budgets).
func (b GCEBudgets) byName() map[string]int {
	return map[string]int{gce.BudgetMutations: b.Mutations, gce.BudgetReads: b.Reads, gce.BudgetLists: b.Lists,
		gce.BudgetOperationReads: b.OperationReads}
}

// ParseRateLimits parses --gce-rate-limit: "group=qps:burst" pairs separated by commas. Groups
// must be known (gce.MethodGroups), qps a non-negative number (0: no cap) and
// burst a positive integer; a group may appear once.
func ParseRateLimits(s string) (map[string]gce.RateLimit, error) {
	out := map[string]gce.RateLimit{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var errs []error
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		group, value, ok := strings.Cut(item, "=")
		qpsS, burstS, ok2 := strings.Cut(value, ":")
		if !ok || !ok2 {
			errs = append(errs, fmt.Errorf("%q is not group=qps:burst", item))
			continue
		}
		group = strings.TrimSpace(group)
		if !slices.Contains(gce.GroupNames(), group) {
			errs = append(errs, fmt.Errorf("unknown group %q (groups: %s)", group, strings.Join(gce.GroupNames(), ", ")))
			continue
		}
		if _, dup := out[group]; dup {
			errs = append(errs, fmt.Errorf("group %q given twice", group))
			continue
		}
		qps, err := strconv.ParseFloat(strings.TrimSpace(qpsS), 64)
		if err != nil || qps < 0 || math.IsInf(qps, 0) || math.IsNaN(qps) {
			errs = append(errs, fmt.Errorf("%s: qps %q must be a number ≥ 0", group, qpsS))
			continue
		}
		burst, err := strconv.Atoi(strings.TrimSpace(burstS))
		if err != nil || burst < 1 {
			errs = append(errs, fmt.Errorf("%s: burst %q must be an integer ≥ 1", group, burstS))
			continue
		}
		out[group] = gce.RateLimit{QPS: qps, Burst: burst}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("--gce-rate-limit: %w", errors.Join(errs...))
	}
	return out, nil
}

// effectiveRateLimits returns the caps of --gce-rate-limit (validated before).
func (o *Options) effectiveRateLimits() map[string]gce.RateLimit {
	caps, _ := ParseRateLimits(o.GCERateLimits)
	return caps
}
