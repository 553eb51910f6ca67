package gce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxInFlight           = 32
	DefaultCallTimeout           = 60 * time.Second
	DefaultWaitCallTimeout       = 150 * time.Second // GCE's wait long-polls up to ~2 min
	DefaultOperationPollInterval = time.Second
	DefaultOperationTimeout      = 5 * time.Minute
	DefaultMaxCallAttempts       = 3
	DefaultRetryBaseDelay        = time.Second
	DefaultUserAgent             = "neg-controller"
)

// Observer receives metrics from the adapter. Implementations must be safe for concurrent use
// and fast (they run inline).
type Observer interface {
	// ObserveRequest is called once per HTTP call (every attempt, every page, every wait):
	// method is the API method id ("networkEndpointGroups.attachNetworkEndpoints",
	// "zoneOperations.wait", ...), result "success" or the Class name of the error.
	ObserveRequest(method string, result string, d time.Duration)
	// ObserveOperation is called once per mutation, from the first mutating call to the end of
	// the operation (or the failure to start or wait for it); method is the mutating method id.
	ObserveOperation(method string, result string, d time.Duration)
	// ObserveRateLimitWait reports how long a call waited for its rate-limit buckets (its
	// budget and its group's cap, if any); method is the method group name (GroupAttach, ...).
	// Only non-zero waits are reported.
	ObserveRateLimitWait(method string, d time.Duration)
}

// Config configures New. Only Project is required.
type Config struct {
	// Project is the GCE project id.
	Project string
	// Region selects the zones ListZones returns (zones whose region is …/regions/<Region>).
	// Empty = every zone of the project. Also used to expand bare subnetwork names.
	Region string
	// Endpoint is the base URL of the Compute API, e.g. "http://127.0.0.1:8085" for the
	// emulator; "/compute/v1/" is appended. Empty = the real Google endpoint.
	Endpoint string
	// HTTPClient, when set, is used for every call (option.WithHTTPClient: no credentials are
	// added by the library; the client must authenticate itself if needed).
	HTTPClient *http.Client
	// WithoutAuth sends no credentials (emulator without a metadata server). Otherwise, and
	// without HTTPClient, Application Default Credentials are used.
	WithoutAuth bool
	// UserAgent is sent with every call; default DefaultUserAgent.
	UserAgent string

	// MaxInFlight caps concurrent GCE calls, operation waits included; default 32.
	MaxInFlight int
	// Budgets sets the shared budgets (BudgetMutations, ...) in calls per minute, see
	// BudgetRate; budgets absent keep DefaultBudgets; 0 disables a budget.
	Budgets map[string]int
	// RateLimits caps method groups (GroupAttach, ...; see MethodGroups) in addition to their
	// budget: a call waits for a token of its group's cap, then of its budget. No group has a
	// cap by default; QPS 0 means no cap.
	RateLimits map[string]RateLimit
	// CallTimeout bounds each HTTP call; default 60 s.
	CallTimeout time.Duration
	// WaitCallTimeout bounds each operations.wait call; default 150 s (GCE returns within
	// ~2 min).
	WaitCallTimeout time.Duration
	// OperationPollInterval is the minimum time between two polls of one operation; default 1 s.
	OperationPollInterval time.Duration
	// OperationTimeout bounds the whole wait for one operation (every poll, retry and pause
	// together), from the moment the mutating call returned it, on Clock; default 5 min. After
	// it the mutation fails with *OperationTimeoutError (class Server: outcome unknown). A
	// shorter ctx deadline still applies.
	OperationTimeout time.Duration
	// MaxCallAttempts bounds the attempts of one HTTP call that fails with a transport error,
	// 5xx or 429 (mutations reuse their requestId); default 3. 1 disables adapter retries.
	MaxCallAttempts int
	// RetryBaseDelay is the first delay between attempts, doubled each time and jittered by up
	// to +50%; default 1 s.
	RetryBaseDelay time.Duration
	// Clock drives rate limiting, backoff, poll spacing and OperationTimeout; default the real
	// clock.
	Clock clock.Clock
	// Observer receives metrics; optional.
	Observer Observer
}

// Compute implements Cloud over google.golang.org/api/compute/v1.
type Compute struct {
	cfg Config
	svc *compute.Service
	clk clock.Clock
	obs Observer
	sem semaphore
	// budgets holds the shared buckets by budget name; caps the optional caps by method group.
	budgets map[string]*adaptiveLimiter
	caps    map[string]*adaptiveLimiter
	ops     opTracker
}

var _ Cloud = (*Compute)(nil)

// New builds the adapter. It does not call GCE.
func New(ctx context.Context, cfg Config) (*Compute, error) {
	if cfg.Project == "" {
		return nil, errors.New("gce: Config.Project is required")
	}
	cfg = withDefaults(cfg)
	opts := []option.ClientOption{option.WithUserAgent(cfg.UserAgent)}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(computeEndpoint(cfg.Endpoint)))
	}
	switch {
	case cfg.HTTPClient != nil:
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	case cfg.WithoutAuth:
		opts = append(opts, option.WithoutAuthentication())
	}
	svc, err := compute.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gce: creating compute client: %w", err)
	}
	c := &Compute{
		cfg:     cfg,
		svc:     svc,
		clk:     cfg.Clock,
		obs:     cfg.Observer,
		sem:     newSemaphore(cfg.MaxInFlight),
		budgets: map[string]*adaptiveLimiter{},
		caps:    map[string]*adaptiveLimiter{},
		ops:     opTracker{started: map[uint64]time.Time{}},
	}
	for name, perMinute := range DefaultBudgets {
		if o, ok := cfg.Budgets[name]; ok {
			perMinute = o
		}
		c.budgets[name] = newAdaptiveLimiter(BudgetRate(perMinute), c.clk)
	}
	for name := range cfg.Budgets {
		if _, ok := DefaultBudgets[name]; !ok {
			return nil, fmt.Errorf("gce: unknown budget %q", name)
		}
	}
	for group, rl := range cfg.RateLimits {
		if _, ok := methodGroup(group); !ok {
			return nil, fmt.Errorf("gce: unknown method group %q", group)
		}
		if rl.QPS > 0 {
			c.caps[group] = newAdaptiveLimiter(rl, c.clk)
		}
	}
	return c, nil
}

func withDefaults(cfg Config) Config {
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.WaitCallTimeout <= 0 {
		cfg.WaitCallTimeout = DefaultWaitCallTimeout
	}
	if cfg.OperationPollInterval <= 0 {
		cfg.OperationPollInterval = DefaultOperationPollInterval
	}
	if cfg.OperationTimeout <= 0 {
		cfg.OperationTimeout = DefaultOperationTimeout
	}
	if cfg.MaxCallAttempts <= 0 {
		cfg.MaxCallAttempts = DefaultMaxCallAttempts
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return cfg
}

// computeEndpoint turns a base URL into the client's endpoint: base + "/compute/v1/" (the
// trailing slash matters, see gce-api.md §1.2). A base already ending in /compute/v1 is kept.
func computeEndpoint(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/compute/v1") {
		return base + "/"
	}
	return base + "/compute/v1/"
}

// Project returns the configured project.
func (c *Compute) Project() string { return c.cfg.Project }

// Service returns the underlying compute/v1 client, for tools and tests that need calls the
// Cloud interface does not offer. Calls made through it bypass rate limits and metrics.
func (c *Compute) Service() *compute.Service { return c.svc }

// RateLimiterState returns the current effective QPS of every budget (BudgetMutations, ...)
// and of every method group's cap (lower than the configured value while slowed down after
// rate-limit errors; +Inf for disabled buckets).
func (c *Compute) RateLimiterState() map[string]float64 {
	return c.eachLimiter(func(l *adaptiveLimiter) float64 { return l.QPS() })
}

// ConfiguredQPS returns the configured rate of every bucket RateLimiterState reports (+Inf for
// disabled ones). A budget's rate is its refill rate (see BudgetRate).
func (c *Compute) ConfiguredQPS() map[string]float64 {
	return c.eachLimiter(func(l *adaptiveLimiter) float64 { return l.ConfiguredQPS() })
}

// RateLimiterGranted returns how many calls each bucket RateLimiterState reports has let
// through since start (every attempt, page and operation wait), so that rate(granted) over
// ConfiguredQPS is the share of the budget spent.
func (c *Compute) RateLimiterGranted() map[string]uint64 {
	out := make(map[string]uint64, len(c.budgets)+len(c.caps))
	for name, l := range c.budgets {
		out[name] = l.Granted()
	}
	for name, l := range c.caps {
		out[name] = l.Granted()
	}
	return out
}

func (c *Compute) eachLimiter(f func(*adaptiveLimiter) float64) map[string]float64 {
	out := make(map[string]float64, len(c.budgets)+len(c.caps))
	for name, l := range c.budgets {
		out[name] = f(l)
	}
	for name, l := range c.caps {
		out[name] = f(l)
	}
	return out
}

// MutationsShort reports whether endpoint calls wait for their budget right now: the shared
// mutation budget, or the attach or detach cap, has calls queued, no token at hand, or is
// slowed after rate-limit errors. The NEG syncer paces each NEG's calls only then
// (plan.Hold): with room in the budget a change goes out as soon as nothing of its direction
// is in flight on the NEG.
func (c *Compute) MutationsShort() bool {
	for _, l := range []*adaptiveLimiter{c.budgets[BudgetMutations], c.caps[GroupAttach], c.caps[GroupDetach]} {
		if l != nil && l.short() {
			return true
		}
	}
	return false
}

// InFlight returns the number of GCE calls currently holding a MaxInFlight slot.
func (c *Compute) InFlight() int { return c.sem.inUse() }

// call performs one HTTP call: it waits for the group's cap (if any), then its budget (in the
// order of ctx's priority and tenant, see WithPriority), then a MaxInFlight slot, runs fn under a
// per-call timeout, reports the result to the Observer and the buckets, and returns fn's
// error. timeout 0 means Config.CallTimeout.
func (c *Compute) call(ctx context.Context, group, method string, timeout time.Duration, fn func(ctx context.Context) error) error {
	mg, ok := methodGroup(group)
	if !ok {
		return fmt.Errorf("gce: unknown method group %q", group)
	}
	lims := []*adaptiveLimiter{c.budgets[mg.Budget]}
	if cp := c.caps[group]; cp != nil {
		lims = []*adaptiveLimiter{cp, lims[0]}
	}
	var waited time.Duration
	var err error
	for _, l := range lims {
		var d time.Duration
		d, err = l.Wait(ctx)
		waited += d
		if err != nil {
			break
		}
	}
	if waited > 0 && c.obs != nil {
		c.obs.ObserveRateLimitWait(group, waited)
	}
	if err != nil {
		return fmt.Errorf("%s: waiting for rate limit: %w", method, err)
	}
	if err := c.sem.acquire(ctx); err != nil {
		return fmt.Errorf("%s: waiting for an in-flight slot: %w", method, err)
	}
	defer c.sem.release()
	if timeout <= 0 {
		timeout = c.cfg.CallTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := c.clk.Now()
	err = fn(cctx)
	d := c.clk.Since(start)
	for _, l := range lims {
		l.Observe(Classify(err))
	}
	if c.obs != nil {
		c.obs.ObserveRequest(method, resultLabel(err), d)
	}
	klog.FromContext(ctx).V(5).Info("GCE call", "method", method, "result", resultLabel(err), "duration", d)
	return err
}

// callRetry is call with up to MaxCallAttempts attempts for errors worth an immediate retry
// (Server, RateLimited — the limiter has already slowed down), with jittered exponential
// backoff. fn must be idempotent: mutations pass the same requestId on every attempt.
func (c *Compute) callRetry(ctx context.Context, group, method string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = c.call(ctx, group, method, 0, fn)
		class := Classify(err)
		if (class != Server && class != RateLimited) || attempt >= c.cfg.MaxCallAttempts || ctx.Err() != nil {
			return err
		}
		delay := c.backoff(attempt)
		klog.FromContext(ctx).V(2).Info("Retrying GCE call", "method", method, "attempt", attempt, "class", class.String(), "delay", delay, "err", err)
		if serr := c.sleep(ctx, delay); serr != nil {
			return err
		}
	}
}

// backoff returns RetryBaseDelay·2^(attempt-1), capped at 30 s, plus up to 50% jitter.
func (c *Compute) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBaseDelay << (attempt - 1)
	if d > 30*time.Second || d <= 0 {
		d = 30 * time.Second
	}
	return d + time.Duration(rand.Int64N(int64(d)/2+1))
}

// sleep waits for d on the configured clock or until ctx is done.
func (c *Compute) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListZones returns the names of the UP zones of the configured region (all regions if
// Config.Region is empty), sorted. It is not part of Cloud: the controller finds zones from its
// nodes; tools and the credential tests use it as the simplest authenticated call.
func (c *Compute) ListZones(ctx context.Context) ([]string, error) { return c.listZones(ctx, true) }

// RegionZones returns the names of every zone of the configured region (all regions if
// Config.Region is empty) whatever its status, sorted: the zones NEGs may be pre-provisioned in
// (a zone DOWN for a while is still one of them). It is not part of Cloud.
func (c *Compute) RegionZones(ctx context.Context) ([]string, error) { return c.listZones(ctx, false) }

// listZones lists the zones of the configured region, only the UP ones if upOnly.
func (c *Compute) listZones(ctx context.Context, upOnly bool) ([]string, error) {
	const method = "zones.list"
	var zones []string
	token := ""
	for {
		var page *compute.ZoneList
		err := c.callRetry(ctx, GroupZones, method, func(ctx context.Context) error {
			var err error
			page, err = c.svc.Zones.List(c.cfg.Project).PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing zones of project %s: %w", c.cfg.Project, err)
		}
		for _, z := range page.Items {
			if upOnly && z.Status != "UP" {
				continue
			}
			if c.cfg.Region != "" && !strings.HasSuffix(z.Region, "/regions/"+c.cfg.Region) {
				continue
			}
			zones = append(zones, z.Name)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	sort.Strings(zones)
	return zones, nil
}
