package fakegce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Health modes of Config.HealthMode.
const (
	HealthModeFixed = "fixed"
	HealthModeProbe = "probe"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultProject             = "test-project"
	DefaultNumericProjectID    = 123456789
	DefaultRegion              = "us-central1"
	DefaultClusterName         = "local"
	DefaultMaxEndpointsPerCall = 500
	DefaultMaxEndpointsPerNEG  = 10000
	DefaultWaitTimeout         = 2 * time.Minute
	DefaultRequestLogSize      = 10000
)

// Config configures a Server. The zero value is usable: every zero field gets the default named
// in its comment.
type Config struct {
	Project          string   // default "test-project"
	NumericProjectID int64    // default 123456789
	Region           string   // default "us-central1"
	Zones            []string // default Region+"-a", "-b", "-c"
	ClusterName      string   // metadata attribute cluster-name; default "local"
	// ClusterLocation is the metadata attribute cluster-location; default Region.
	ClusterLocation string
	// OperationLatency is how long every operation stays RUNNING before it is DONE and its
	// effect becomes visible; 0 = DONE in the response of the mutating call.
	OperationLatency time.Duration
	// OperationWaitTimeout caps how long an operations.wait call blocks; default 2 minutes as
	// documented for GCE.
	OperationWaitTimeout time.Duration
	// MaxEndpointsPerCall caps the endpoints of one attach/detach call; default 500. This is the
	// de-facto batch size clients use (kubernetes/ingress-gce), not a documented GCE limit.
	MaxEndpointsPerCall int
	// MaxEndpointsPerNEG caps a NEG's size; default 10,000 (GCE quota "endpoints per NEG").
	MaxEndpointsPerNEG int
	// StrictEndpointOps makes attaching an attached endpoint and detaching an absent one fail
	// with 400 invalid instead of being no-ops. Real GCE: [unverified].
	StrictEndpointOps bool
	// HealthMode is HealthModeFixed (default) or HealthModeProbe; see health.go.
	HealthMode string
	// FixedHealthyDelay is, in fixed mode, how long after an endpoint became attached to a
	// health-checked backend service it turns HEALTHY (UNKNOWN before).
	FixedHealthyDelay time.Duration
	// RequestLogSize bounds the request log (oldest entries dropped); default 10,000.
	RequestLogSize int
	// Quota, when set, enforces GCE's rate quotas: per-group limits per minute in fixed
	// windows, 403 rateLimitExceeded over the limit (quota.go). nil = no quota. SetQuota
	// changes it at run time.
	Quota *QuotaConfig
	// DefaultStackType is the stack type of the "default" subnetwork: IPV4_ONLY (default; the
	// network is in auto mode), IPV4_IPV6 (dual-stack) or IPV6_ONLY. With IPv6 the "default"
	// network is in custom mode with internal IPv6 range DefaultNetworkIPv6Range and the
	// subnetwork gets DefaultSubnetIPv6Range (ipv6.go).
	DefaultStackType string
	// Auth, when set, serves Google's token endpoints (STS token exchange, IAM Credentials
	// generateAccessToken) for Workload Identity Federation and, with Auth.Required, rejects
	// Compute requests without a token they issued (auth.go). nil: no token endpoints, no checks.
	Auth *AuthConfig
}

// withDefaults returns cfg with defaults applied, or an error naming a bad field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Project == "" {
		cfg.Project = DefaultProject
	}
	if cfg.NumericProjectID == 0 {
		cfg.NumericProjectID = DefaultNumericProjectID
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{cfg.Region + "-a", cfg.Region + "-b", cfg.Region + "-c"}
	}
	cfg.Zones = slices.Clone(cfg.Zones)
	slices.Sort(cfg.Zones)
	if cfg.ClusterName == "" {
		cfg.ClusterName = DefaultClusterName
	}
	if cfg.ClusterLocation == "" {
		cfg.ClusterLocation = cfg.Region
	}
	if cfg.OperationWaitTimeout <= 0 {
		cfg.OperationWaitTimeout = DefaultWaitTimeout
	}
	if cfg.MaxEndpointsPerCall <= 0 {
		cfg.MaxEndpointsPerCall = DefaultMaxEndpointsPerCall
	}
	if cfg.MaxEndpointsPerNEG <= 0 {
		cfg.MaxEndpointsPerNEG = DefaultMaxEndpointsPerNEG
	}
	if cfg.HealthMode == "" {
		cfg.HealthMode = HealthModeFixed
	}
	if cfg.RequestLogSize <= 0 {
		cfg.RequestLogSize = DefaultRequestLogSize
	}
	if cfg.DefaultStackType == "" {
		cfg.DefaultStackType = StackIPv4Only
	}
	switch {
	case !validStack(cfg.DefaultStackType):
		return cfg, fmt.Errorf("default stack type %q: want %s, %s or %s", cfg.DefaultStackType, StackIPv4Only, StackDual, StackIPv6Only)
	case cfg.HealthMode != HealthModeFixed && cfg.HealthMode != HealthModeProbe:
		return cfg, fmt.Errorf("health mode %q: want %q or %q", cfg.HealthMode, HealthModeFixed, HealthModeProbe)
	case cfg.OperationLatency < 0 || cfg.FixedHealthyDelay < 0:
		return cfg, fmt.Errorf("operation latency and fixed healthy delay must not be negative")
	case !validName(cfg.Project) || !validName(cfg.Region):
		return cfg, fmt.Errorf("project %q and region %q must be valid resource names", cfg.Project, cfg.Region)
	}
	for _, z := range cfg.Zones {
		if !validName(z) {
			return cfg, fmt.Errorf("zone %q is not a valid resource name", z)
		}
	}
	if cfg.Quota != nil {
		if _, err := cfg.Quota.limits(); err != nil {
			return cfg, err
		}
	}
	if cfg.Auth != nil {
		a := *cfg.Auth
		a.ServiceAccounts = slices.Clone(a.ServiceAccounts)
		if a.TokenLifetime < 0 {
			return cfg, fmt.Errorf("auth token lifetime must not be negative")
		}
		cfg.Auth = &a
	}
	return cfg, nil
}

// Validate reports whether New would accept cfg.
func (cfg Config) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// Server is the emulator: an http.Handler serving the Compute API under /compute/v1/, the
// metadata server under /computeMetadata/v1/ and the admin API under /admin/. Create it with
// New and Close it when done. All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	ctx    context.Context // canceled by Close: stops background work and releases waiters
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup

	mu sync.RWMutex // guards st
	st *state

	ops    *opStore
	faults faultSet
	obs    *observer
	probe  *prober   // nil in fixed health mode
	lb     lbSet     // load balancer frontends (lb.go)
	quota  quota     // rate quotas (quota.go)
	auth   authState // token endpoints and bearer checks (auth.go)

	methods []string // discovery ids of the registered Compute routes
}

// New returns a Server for cfg with its default network and subnetwork. It panics on an
// invalid Config (see Config.Validate); callers taking configuration from users validate first.
func New(cfg Config) *Server {
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic("fakegce: " + err.Error())
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), st: newState(), obs: newObserver(cfg.RequestLogSize)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.faults.init()
	s.quota.project = cfg.NumericProjectID
	if err := s.quota.set(cfg.Quota); err != nil {
		panic("fakegce: " + err.Error()) // validated by withDefaults
	}
	s.auth = authState{cfg: cfg.Auth, tokens: map[string]tokenInfo{}}
	s.ops = newOpStore(s)
	s.addDefaultNetwork()
	s.routes()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.ops.run(s.ctx) }()
	if cfg.HealthMode == HealthModeProbe {
		s.probe = newProber(s)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.probe.run(s.ctx) }()
	}
	return s
}

// Close stops background work (operation timers, probers, load balancer frontends) and
// releases blocked operations.wait calls. It is idempotent. Requests after Close are still
// answered, but operations that were not DONE never finish.
func (s *Server) Close() {
	s.once.Do(func() {
		s.closeFrontends()
		s.cancel()
		s.wg.Wait()
	})
}

// NewTestServer starts New(cfg) behind an httptest server and returns it with the base URL
// ("http://127.0.0.1:PORT"; the Compute client endpoint is base+"/compute/v1/"). Both are
// closed by t.Cleanup.
func NewTestServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close) // runs second: s.Close has released blocked waits
	t.Cleanup(s.Close)
	return s, ts.URL
}

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc serves one Compute method: it returns the value to answer as JSON, or an error.
type handlerFunc func(c *call) (any, *apiError)

// call is one Compute request being served.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	method    string // discovery method id, e.g. compute.networkEndpointGroups.attachNetworkEndpoints
	requestID string // requestId query parameter of a mutation
	opFault   *Fault // injected fault that affects the operation this call starts
}

type route struct {
	verb, path, method string
	mutating           bool
	h                  handlerFunc
}

// handle registers a Compute method. path is relative to /compute/v1/projects/{project}/.
func (s *Server) handle(verb, path, method string, h handlerFunc) {
	rt := route{verb: verb, path: path, method: method, mutating: verb != http.MethodGet && isMutation(method), h: h}
	s.methods = append(s.methods, method)
	s.mux.HandleFunc(verb+" /compute/v1/projects/{project}/"+path, func(w http.ResponseWriter, r *http.Request) {
		s.serveCompute(rt, w, r)
	})
}

// isMutation tells the methods that start an operation from POST methods that only read.
func isMutation(method string) bool {
	for _, suffix := range []string{".listNetworkEndpoints", ".getHealth", ".wait"} {
		if strings.HasSuffix(method, suffix) {
			return false
		}
	}
	return true
}

func (s *Server) routes() {
	s.negRoutes()
	s.backendRoutes()
	s.healthCheckRoutes()
	s.instanceRoutes()
	s.networkRoutes()
	s.operationRoutes()
	s.authRoutes()
	s.mux.HandleFunc("/computeMetadata/v1/", s.serveMetadata)
	s.mux.HandleFunc("/admin/", s.serveAdmin)
	s.mux.HandleFunc("/", s.serveUnknown)
}

// serveUnknown answers every path no route matches with a loud 404 that names it, so that a
// client pointed at the wrong base path fails at once.
func (s *Server) serveUnknown(w http.ResponseWriter, r *http.Request) {
	s.obs.begin("fakegce.unknownPath", r, "")
	writeError(w, &apiError{code: http.StatusNotFound, reason: reasonNotFound, message: fmt.Sprintf(
		"fakegce: no such method or path: %s %s (Compute API is served under /compute/v1/projects/%s/..., "+
			"metadata under /computeMetadata/v1/, admin under /admin/, with Config.Auth the STS at /v1/token and "+
			"IAM Credentials at /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken)", r.Method, r.URL.Path, s.cfg.Project)})
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (s *Server) serveCompute(rt route, w http.ResponseWriter, r *http.Request) {
	rid := ""
	if rt.mutating {
		rid = r.URL.Query().Get("requestId")
	}
	rec := s.obs.begin(rt.method, r, rid)
	status := http.StatusOK
	defer func() { s.obs.finish(rec, status) }()
	fail := func(e *apiError) { status = e.code; writeError(w, e) }

	// Authentication comes first, as on Google's front ends: a 401 costs no quota.
	principal, aerr := s.auth.checkCompute(r, time.Now())
	s.obs.setPrincipal(rec, principal)
	if aerr != nil {
		fail(aerr)
		return
	}
	if p := r.PathValue("project"); p != s.cfg.Project {
		fail(errNotFound("projects/" + p))
		return
	}
	// The quota is the project's and is checked before the method runs: a request over it
	// changes nothing. Requests for other zones/regions or that fail validation still count.
	if e := s.quota.admit(rt.method); e != nil {
		fail(e)
		return
	}
	if z := r.PathValue("zone"); z != "" && !s.hasZone(z) {
		fail(errNotFound(s.rel("zones", z)))
		return
	}
	if rg := r.PathValue("region"); rg != "" && rg != s.cfg.Region {
		fail(errNotFound(s.rel("regions", rg)))
		return
	}
	eff := s.faults.roll(rt.method, rt.mutating)
	if eff.latency > 0 {
		t := time.NewTimer(eff.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		t.Stop()
	}
	if eff.err != nil {
		fail(eff.err)
		return
	}
	c := &call{w: w, r: r, method: rt.method, opFault: eff.op}
	if rid != "" {
		// The doc requires a UUID other than the zero UUID; the exact error is [unverified].
		if !uuidRE.MatchString(rid) || strings.Trim(rid, "0-") == "" {
			fail(errInvalidField("requestId", rid, "The request id must be a valid UUID with the exception that zero UUID is not supported."))
			return
		}
		if op := s.ops.byRequestID(rid); op != nil {
			writeJSON(w, op)
			return
		}
		c.requestID = rid
	}
	v, err := rt.h(c)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// maxBody bounds request bodies (an attach of 500 endpoints is ~50 KiB).
const maxBody = 32 << 20

// readBody reads a request body (bounded).
func readBody(r *http.Request) ([]byte, *apiError) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, errInvalid("Invalid JSON payload received. %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errInvalid("Required field 'resource' not specified")
	}
	return data, nil
}

// decodeStrict decodes JSON into v, rejecting unknown top-level fields as GCE does ("Invalid
// JSON payload received. Unknown name ..."). Nested types of the compute package that have their
// own UnmarshalJSON are decoded leniently.
func decodeStrict(data []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInvalid("Invalid JSON payload received. %v", err)
	}
	return nil
}

// decodeBody reads and strictly decodes the request body into v.
func decodeBody(r *http.Request, v any) *apiError {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeStrict(data, v)
}

// hasZone reports whether zone is one of the configured zones.
func (s *Server) hasZone(zone string) bool {
	_, ok := slices.BinarySearch(s.cfg.Zones, zone)
	return ok
}

// listParams are the common parameters of list methods.
type listParams struct {
	max   int
	token string
}

// parseList reads maxResults (0–500, default 500) and pageToken, and rejects filter and orderBy,
// which the emulator does not implement (better loud than silently unfiltered).
func parseList(r *http.Request) (listParams, *apiError) {
	q := r.URL.Query()
	p := listParams{max: 500, token: q.Get("pageToken")}
	if f := q.Get("filter"); f != "" {
		return p, errInvalidField("filter", f, "fakegce does not implement list filters.")
	}
	if o := q.Get("orderBy"); o != "" {
		return p, errInvalidField("orderBy", o, "fakegce does not implement orderBy.")
	}
	if m := q.Get("maxResults"); m != "" {
		var n int
		if _, err := fmt.Sscan(m, &n); err != nil || n < 0 || n > 500 {
			return p, errInvalidField("maxResults", m, "Must be between 0 and 500.")
		}
		if n > 0 {
			p.max = n
		}
	}
	return p, nil
}
