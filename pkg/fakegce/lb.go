package fakegce

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Emulated load balancer
//
// A frontend (AddFrontend, POST /admin/frontends) is a local HTTP listener that stands for a
// forwarding rule + target proxy + URL map whose only route is one backend service. For each
// request it:
//
//  1. picks, round robin, one of the backend service's endpoints that the service's health
//     check reports HEALTHY (BackendHealth), skipping backends whose capacityScaler is 0, and
//     the address to send to by the service's ipAddressSelectionPolicy (documented): IPV4_ONLY
//     (the default) the IPv4 address if it is HEALTHY, IPV6_ONLY the IPv6 address if it is
//     HEALTHY, PREFER_IPV6 the IPv6 address if it is HEALTHY, else the IPv4 one if it is. An
//     endpoint whose service has no health check has no health and is never picked: GCE sends
//     no traffic to backends of a health-checked service until they are healthy, and the
//     emulator requires a health check. No eligible endpoint: 502 "no healthy upstream" (GCLB
//     answers 502 with statusDetails failed_to_pick_backend; Envoy-based load balancers say
//     "no healthy upstream");
//  2. proxies it over HTTP/1.1 to that address's loopback address (LoopbackFor: 10.A.B.C is
//     dialed at 127.A.B.C, fdXX::…:X:Y:Z at 127.X.Y.Z); the dialer refuses anything outside
//     127.0.0.0/8. The Host header is
//     kept; X-Forwarded-For/-Host/-Proto and "Via: 1.1 google" are added. A connect error or a
//     response slower than the service's timeoutSec is a 502 (upstream error);
//  3. while the request is in flight, watches the endpoint's membership: the moment it is
//     detached, its NEG leaves the backend service or the service is deleted (that is, when the
//     operation applies), no new request goes to it, and the in-flight one may finish within
//     the service's connectionDraining.drainingTimeoutSec (0: cut at once). At the deadline
//     it is cut: 502 if no response had started, else the client connection is aborted. If the
//     endpoint comes back before the deadline, the drain is called off.
//
// Health changes do not drain: a request in flight to an endpoint that turns UNHEALTHY runs on.
// Traffic is plain round robin over all eligible endpoints of all backends (GCLB's
// rate-based, zone-aware balancing is not emulated). Counters per frontend: FrontendStats.

// Causes of 502 answers, in the X-Fakegce-Cause header and the counters.
const (
	causeNoHealthy = "no_healthy_backend"
	causeUpstream  = "upstream_error"
	causeDrainCut  = "draining_cut"
)

// FrontendStats are the counters of one frontend. Every 502 the load balancer generates is
// counted under exactly one cause; a draining cut after the response started aborts the client
// connection instead of a 502 and is counted under DrainingCuts too.
type FrontendStats struct {
	Address        string `json:"address"`
	Region         string `json:"region,omitempty"`
	BackendService string `json:"backendService"`
	// Requests received; InFlight being proxied now.
	Requests int64 `json:"requests"`
	InFlight int64 `json:"inFlight"`
	// NoHealthyBackend counts 502s for want of a HEALTHY endpoint.
	NoHealthyBackend int64 `json:"noHealthyBackend"`
	// UpstreamErrors counts 502s (or aborted responses) for a connect, read or timeout error.
	UpstreamErrors int64 `json:"upstreamErrors"`
	// DrainingCuts counts requests cut at the draining timeout after their endpoint left.
	DrainingCuts int64 `json:"drainingCuts"`
	// Backend5xx counts 5xx responses the endpoints themselves sent (passed through).
	Backend5xx int64 `json:"backend5xx"`
	// Endpoints counts requests forwarded per endpoint address "ip:port" ("[ipv6]:port" when the
	// IPv6 address was chosen).
	Endpoints map[string]int64 `json:"endpoints,omitempty"`
}

// Errors5xx is the number of 5xx answers and aborted responses the frontend's clients saw.
func (st FrontendStats) Errors5xx() int64 {
	return st.NoHealthyBackend + st.UpstreamErrors + st.DrainingCuts + st.Backend5xx
}

// lbSet holds a server's frontends.
type lbSet struct {
	mu     sync.Mutex
	closed bool
	fes    map[string]*frontend // by listen address
}

// lbTarget is one endpoint of one backend NEG.
type lbTarget struct {
	neg negKey
	ep  neg.Endpoint
}

// frontend is one listener proxying to one backend service.
type frontend struct {
	s     *Server
	bs    scopeKey
	addr  string
	srv   *http.Server
	tr    *http.Transport
	proxy *httputil.ReverseProxy
	rr    atomic.Uint64
	done  chan struct{} // Serve returned

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup
	inflight map[*lbRequest]struct{}
	stats    FrontendStats
}

// lbPick is an endpoint that may get a request and the address to send it to.
type lbPick struct {
	lbTarget
	addr string
}

// lbRequest is one proxied request in flight.
type lbRequest struct {
	target lbTarget
	addr   string        // the endpoint address chosen (IPv4 or IPv6)
	drain  time.Duration // the service's draining timeout when the request was routed
	cancel context.CancelFunc

	mu    sync.Mutex
	timer *time.Timer // set while draining
	cut   bool
	over  bool
}

type lbRequestKey struct{}

// AddFrontend starts a load balancer frontend for the backend service (region "" = global) on
// listen (a 127.0.0.0/8 host:port; "" = 127.0.0.1:0) and returns its address. See lb.go for
// what it does. The backend service must exist (if it is deleted later, the frontend answers
// 502). RemoveFrontend or Close stops it.
func (s *Server) AddFrontend(region, backendService, listen string) (string, error) {
	if region != "" && region != s.cfg.Region {
		return "", fmt.Errorf("fakegce: region %q: want %q or empty (global)", region, s.cfg.Region)
	}
	k := scopeKey{region, backendService}
	s.mu.RLock()
	exists := s.st.backends[k] != nil
	s.mu.RUnlock()
	if !exists {
		return "", fmt.Errorf("fakegce: no backend service %s", s.bsRel(k))
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("fakegce: frontend listen address %q: %w", listen, err)
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || !a.IsLoopback() {
		return "", fmt.Errorf("fakegce: frontend listen address %q: want an IPv4 address in 127.0.0.0/8", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("fakegce: frontend: %w", err)
	}
	f := newFrontend(s, k, ln.Addr().String())
	s.lb.mu.Lock()
	if s.lb.closed {
		s.lb.mu.Unlock()
		_ = ln.Close()
		return "", errors.New("fakegce: server closed")
	}
	if s.lb.fes == nil {
		s.lb.fes = map[string]*frontend{}
	}
	s.lb.fes[f.addr] = f
	s.lb.mu.Unlock()
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln)
	}()
	return f.addr, nil
}

// RemoveFrontend stops the frontend listening on addr: its listener and client connections are
// closed and requests in flight are cut.
func (s *Server) RemoveFrontend(addr string) error {
	s.lb.mu.Lock()
	f := s.lb.fes[addr]
	delete(s.lb.fes, addr)
	s.lb.mu.Unlock()
	if f == nil {
		return fmt.Errorf("fakegce: no frontend %s", addr)
	}
	f.close()
	return nil
}

// Frontends returns the counters of every frontend, by address.
func (s *Server) Frontends() []FrontendStats {
	s.lb.mu.Lock()
	fes := slices.Collect(maps.Values(s.lb.fes))
	s.lb.mu.Unlock()
	out := make([]FrontendStats, 0, len(fes))
	for _, f := range fes {
		out = append(out, f.snapshot())
	}
	slices.SortFunc(out, func(a, b FrontendStats) int {
		if a.Address < b.Address {
			return -1
		}
		if a.Address > b.Address {
			return 1
		}
		return 0
	})
	return out
}

// Frontend returns the counters of the frontend listening on addr.
func (s *Server) Frontend(addr string) (FrontendStats, bool) {
	s.lb.mu.Lock()
	f := s.lb.fes[addr]
	s.lb.mu.Unlock()
	if f == nil {
		return FrontendStats{}, false
	}
	return f.snapshot(), true
}

// closeFrontends stops every frontend and refuses new ones (Server.Close).
func (s *Server) closeFrontends() {
	s.lb.mu.Lock()
	s.lb.closed = true
	fes := s.lb.fes
	s.lb.fes = nil
	s.lb.mu.Unlock()
	for _, f := range fes {
		f.close()
	}
}

// frontendsChanged is called after every state change: requests in flight to endpoints that
// are no longer backends start draining (and those whose endpoint came back stop).
func (s *Server) frontendsChanged() {
	s.lb.mu.Lock()
	fes := slices.Collect(maps.Values(s.lb.fes))
	s.lb.mu.Unlock()
	for _, f := range fes {
		f.checkDrains()
	}
}

func newFrontend(s *Server, k scopeKey, addr string) *frontend {
	f := &frontend{s: s, bs: k, addr: addr, done: make(chan struct{}), inflight: map[*lbRequest]struct{}{},
		stats: FrontendStats{Address: addr, Region: k.region, BackendService: k.name, Endpoints: map[string]int64{}}}
	dialer := &net.Dialer{Control: loopbackOnly, Timeout: 5 * time.Second}
	f.tr = &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	f.proxy = &httputil.ReverseProxy{
		Transport: f.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			lr := pr.In.Context().Value(lbRequestKey{}).(*lbRequest)
			host, _ := LoopbackFor(lr.addr) // checked before proxying
			pr.SetURL(&url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.FormatInt(lr.target.ep.Port, 10))})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Add("Via", "1.1 google")
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode >= 500 {
				f.count(func(st *FrontendStats) { st.Backend5xx++ })
			}
			return nil
		},
		ErrorHandler: f.proxyError,
	}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	return f
}

func (f *frontend) count(fn func(st *FrontendStats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

func (f *frontend) snapshot() FrontendStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.InFlight = int64(len(f.inflight))
	st.Endpoints = maps.Clone(f.stats.Endpoints)
	return st
}

// close stops serving, cuts requests in flight and waits for their handlers.
func (f *frontend) close() {
	f.mu.Lock()
	f.closed = true
	for r := range f.inflight {
		r.cancel()
	}
	f.mu.Unlock()
	_ = f.srv.Close()
	<-f.done
	f.handlers.Wait()
	f.tr.CloseIdleConnections()
}

// fail answers a 502 generated by the load balancer itself.
func fail(w http.ResponseWriter, cause, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Fakegce-Cause", cause)
	w.WriteHeader(http.StatusBadGateway)
	_, _ = fmt.Fprintf(w, "fakegce load balancer: %s\n", msg)
}

// ServeHTTP routes one client request.
func (f *frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		http.Error(w, "fakegce load balancer: frontend closed", http.StatusServiceUnavailable)
		return
	}
	f.handlers.Add(1)
	f.stats.Requests++
	f.mu.Unlock()
	defer f.handlers.Done()

	lr, ctx, timeout := f.route(r.Context())
	if lr == nil {
		f.count(func(st *FrontendStats) { st.NoHealthyBackend++ })
		fail(w, causeNoHealthy, "no healthy upstream (GCLB: failed_to_pick_backend)")
		return
	}
	defer f.finish(lr)
	defer lr.cancel()
	if _, ok := LoopbackFor(lr.addr); !ok {
		f.count(func(st *FrontendStats) { st.UpstreamErrors++ })
		fail(w, causeUpstream, fmt.Sprintf("endpoint %s is not reachable in the emulated VPC (only 10.0.0.0/8 and fd00::/8 are routed)", lr.addr))
		return
	}
	defer func() {
		if p := recover(); p != nil { // the response was cut or broke after it started
			switch {
			case lr.wasCut():
				f.count(func(st *FrontendStats) { st.DrainingCuts++ })
			case r.Context().Err() == nil:
				f.count(func(st *FrontendStats) { st.UpstreamErrors++ })
			}
			panic(p)
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, lbRequestKey{}, lr)))
}

// route picks a HEALTHY endpoint round robin and registers the request as in flight to it,
// with a context (child of ctx) that a draining cut cancels. It re-checks membership after
// registering so that a request routed from a view taken just before a detach is routed again
// (never sent to a detached endpoint). It returns nil when no endpoint is eligible, and the
// backend service's timeout.
func (f *frontend) route(ctx context.Context) (*lbRequest, context.Context, time.Duration) {
	for range 3 {
		if ctx.Err() != nil {
			return nil, nil, 0
		}
		targets, drain, timeout := f.s.lbTargets(f.bs)
		if len(targets) == 0 {
			return nil, nil, 0
		}
		pick := targets[(f.rr.Add(1)-1)%uint64(len(targets))]
		t := pick.lbTarget
		rctx, cancel := context.WithCancel(ctx)
		lr := &lbRequest{target: t, addr: pick.addr, drain: drain, cancel: cancel}
		f.mu.Lock()
		closed := f.closed
		if !closed {
			f.inflight[lr] = struct{}{}
		}
		f.mu.Unlock()
		if closed {
			cancel()
			return nil, nil, 0
		}
		if f.s.lbMember(f.bs, t) {
			f.count(func(st *FrontendStats) {
				st.Endpoints[net.JoinHostPort(pick.addr, strconv.FormatInt(t.ep.Port, 10))]++
			})
			return lr, rctx, timeout
		}
		f.finish(lr)
		cancel()
	}
	return nil, nil, 0
}

// finish unregisters a request and calls off its drain timer.
func (f *frontend) finish(lr *lbRequest) {
	f.mu.Lock()
	delete(f.inflight, lr)
	f.mu.Unlock()
	lr.mu.Lock()
	lr.over = true
	if lr.timer != nil {
		lr.timer.Stop()
	}
	lr.mu.Unlock()
}

// proxyError answers a failed proxied request (no response had started).
func (f *frontend) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	lr := r.Context().Value(lbRequestKey{}).(*lbRequest)
	switch {
	case lr.wasCut():
		f.count(func(st *FrontendStats) { st.DrainingCuts++ })
		fail(w, causeDrainCut, "request cut at the connection draining timeout after its endpoint left the backend service")
	case errors.Is(err, context.Canceled):
		w.WriteHeader(499) // client gone; nobody reads this, nothing counted
	default:
		f.count(func(st *FrontendStats) { st.UpstreamErrors++ })
		fail(w, causeUpstream, fmt.Sprintf("upstream error: %v", err))
	}
}

func (lr *lbRequest) wasCut() bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.cut
}

// setDraining starts (d >= 0) or calls off (d < 0) the request's drain.
func (lr *lbRequest) setDraining(d time.Duration) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	switch {
	case lr.over || lr.cut:
	case d < 0:
		if lr.timer != nil && lr.timer.Stop() {
			lr.timer = nil
		}
	case lr.timer != nil:
	case d == 0:
		lr.cut = true
		lr.cancel()
	default:
		lr.timer = time.AfterFunc(d, func() {
			lr.mu.Lock()
			defer lr.mu.Unlock()
			if !lr.over {
				lr.cut = true
				lr.cancel()
			}
		})
	}
}

// checkDrains starts or calls off the drains of the frontend's requests in flight.
func (f *frontend) checkDrains() {
	f.mu.Lock()
	reqs := slices.Collect(maps.Keys(f.inflight))
	f.mu.Unlock()
	if len(reqs) == 0 {
		return
	}
	members, drain, exists := f.s.lbMembers(f.bs)
	for _, lr := range reqs {
		switch {
		case members[lr.target]:
			lr.setDraining(-1)
		case exists:
			lr.setDraining(drain)
		default:
			lr.setDraining(lr.drain)
		}
	}
}

// drainingTimeout is the backend service's connection draining timeout. Called with s.mu held.
func (b *backendService) drainingTimeout() time.Duration {
	if b.obj.ConnectionDraining == nil {
		return 0
	}
	return time.Duration(b.obj.ConnectionDraining.DrainingTimeoutSec) * time.Second
}

// lbTargets returns the endpoints of the backend service that may get new requests (an address
// HEALTHY, in a backend with non-zero capacity) with the address to use (lbAddress), the
// draining timeout and the backend timeout.
func (s *Server) lbTargets(k scopeKey) ([]lbPick, time.Duration, time.Duration) {
	s.mu.RLock()
	b := s.st.backends[k]
	s.mu.RUnlock()
	if b == nil || !b.hasHC() {
		return nil, 0, 0
	}
	var out []lbPick
	for i, g := range b.groups {
		if cs := b.obj.Backends[i].CapacityScaler; cs == 0 {
			continue
		}
		eps, err := s.groupHealth(k, g)
		if err != nil {
			continue // the service changed meanwhile; the next request sees the new one
		}
		for _, e := range eps {
			if addr := lbAddress(b.obj.IpAddressSelectionPolicy, e); addr != "" {
				out = append(out, lbPick{lbTarget{g, e.Endpoint}, addr})
			}
		}
	}
	timeout := time.Duration(b.obj.TimeoutSec) * time.Second
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return out, b.drainingTimeout(), timeout
}

// lbAddress is the address of e that gets traffic under the selection policy, "" if none is
// HEALTHY (see the top of this file).
func lbAddress(policy string, e BackendEndpoint) string {
	v6 := e.Endpoint.IPv6 != "" && e.IPv6State == "HEALTHY"
	v4 := e.Endpoint.IP != "" && e.State == "HEALTHY"
	switch {
	case policy == "IPV6_ONLY" && v6, policy == "PREFER_IPV6" && v6:
		return e.Endpoint.IPv6
	case policy != "IPV6_ONLY" && v4:
		return e.Endpoint.IP
	}
	return ""
}

// lbMember reports whether t is (still) an endpoint of a backend NEG of the service.
func (s *Server) lbMember(k scopeKey, t lbTarget) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.st.backends[k]
	if b == nil || !b.hasGroup(t.neg) {
		return false
	}
	n := s.st.negs[t.neg]
	if n == nil {
		return false
	}
	_, ok := n.eps[t.ep]
	return ok
}

// lbMembers returns every endpoint of the service's backend NEGs, its draining timeout, and
// whether it exists.
func (s *Server) lbMembers(k scopeKey) (map[lbTarget]bool, time.Duration, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.st.backends[k]
	if b == nil {
		return nil, 0, false
	}
	out := map[lbTarget]bool{}
	for _, g := range b.groups {
		if n := s.st.negs[g]; n != nil {
			for e := range n.eps {
				out[lbTarget{g, e}] = true
			}
		}
	}
	return out, b.drainingTimeout(), true
}
