package fakegce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// LoopbackFor is the emulated VPC's one routing rule: a private IPv4 endpoint 10.A.B.C is
// reached at 127.A.B.C (Linux routes all of 127.0.0.0/8 to the loopback interface, so a test
// serves endpoint 10.0.0.7:8080 by listening on 127.0.0.7:8080), and an IPv6 endpoint in the
// unique local range fd00::/8 (where GCE's internal IPv6 ranges, fd20::/20, lie) at 127.X.Y.Z
// where X.Y.Z are its last three bytes: fd20::4001:40:105 is reached at 127.64.1.5. A pod whose
// IPv6 address ends in the last three bytes of its IPv4 address (test/podsim's plan) is
// therefore served for both families by one listener. Every other address (and an IPv6 address
// with a zone) is not reachable: ok is false and probes of it fail. Traffic never leaves
// 127.0.0.0/8.
func LoopbackFor(ip string) (string, bool) {
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil || a.Zone() != "":
		return "", false
	case a.Is4():
		b := a.As4()
		if b[0] != 10 {
			return "", false
		}
		b[0] = 127
		return netip.AddrFrom4(b).String(), true
	case a.Is4In6():
		return "", false
	}
	b := a.As16()
	if b[0] != 0xfd {
		return "", false
	}
	return netip.AddrFrom4([4]byte{127, b[13], b[14], b[15]}).String(), true
}

const (
	probeTick        = 100 * time.Millisecond // scheduler resolution
	maxParallelProbe = 64                     // probes in flight at once
	probeReadLimit   = 1024                   // GCE matches `response` in the first 1024 bytes
)

// probeKey identifies what is probed: one address (IPv4, or IPv6 with ipv6) of one endpoint as
// one health check sees it. Two services sharing a health check and a NEG share the prober,
// like GCE's per-check probing.
type probeKey struct {
	hc   scopeKey
	ep   neg.Endpoint
	ipv6 bool
}

// addr is the probed address.
func (k probeKey) addr() string {
	if k.ipv6 {
		return k.ep.IPv6
	}
	return k.ep.IP
}

// probeSpec is the part of a health check that drives probing.
type probeSpec struct {
	protocol           string // HTTP (also for HTTPS, HTTP2) or TCP (also SSL, GRPC*)
	port               int64  // 0 = the endpoint's port (USE_SERVING_PORT)
	path, host         string
	request, response  string
	interval, timeout  time.Duration
	healthy, unhealthy int
}

// specOf derives the probe spec of a health check. HTTPS and HTTP2 checks are probed as plain
// HTTP and SSL/GRPC checks as TCP connects: endpoints of the emulated VPC are local test
// servers [emulator simplification]. USE_NAMED_PORT cannot apply to NEG endpoints: port -1,
// probes fail.
func specOf(hc *compute.HealthCheck) probeSpec {
	sp := probeSpec{protocol: "TCP", interval: time.Duration(hc.CheckIntervalSec) * time.Second,
		timeout: time.Duration(hc.TimeoutSec) * time.Second, healthy: int(hc.HealthyThreshold), unhealthy: int(hc.UnhealthyThreshold)}
	var portSpec string
	switch {
	case hc.HttpHealthCheck != nil && hc.Type == "HTTP":
		h := hc.HttpHealthCheck
		sp.protocol, sp.port, portSpec, sp.path, sp.host, sp.response = "HTTP", h.Port, h.PortSpecification, h.RequestPath, h.Host, h.Response
	case hc.HttpsHealthCheck != nil && hc.Type == "HTTPS":
		h := hc.HttpsHealthCheck
		sp.protocol, sp.port, portSpec, sp.path, sp.host, sp.response = "HTTP", h.Port, h.PortSpecification, h.RequestPath, h.Host, h.Response
	case hc.Http2HealthCheck != nil && hc.Type == "HTTP2":
		h := hc.Http2HealthCheck
		sp.protocol, sp.port, portSpec, sp.path, sp.host, sp.response = "HTTP", h.Port, h.PortSpecification, h.RequestPath, h.Host, h.Response
	case hc.TcpHealthCheck != nil && hc.Type == "TCP":
		h := hc.TcpHealthCheck
		sp.port, portSpec, sp.request, sp.response = h.Port, h.PortSpecification, h.Request, h.Response
	case hc.SslHealthCheck != nil:
		sp.port, portSpec = hc.SslHealthCheck.Port, hc.SslHealthCheck.PortSpecification
	case hc.GrpcHealthCheck != nil:
		sp.port, portSpec = hc.GrpcHealthCheck.Port, hc.GrpcHealthCheck.PortSpecification
	case hc.GrpcTlsHealthCheck != nil:
		sp.port, portSpec = hc.GrpcTlsHealthCheck.Port, hc.GrpcTlsHealthCheck.PortSpecification
	}
	switch portSpec {
	case "USE_SERVING_PORT":
		sp.port = 0
	case "USE_NAMED_PORT":
		sp.port = -1
	}
	if sp.path == "" {
		sp.path = "/"
	}
	if sp.interval <= 0 {
		sp.interval = 5 * time.Second
	}
	if sp.timeout <= 0 || sp.timeout > sp.interval {
		sp.timeout = sp.interval
	}
	sp.healthy, sp.unhealthy = max(sp.healthy, 1), max(sp.unhealthy, 1)
	return sp
}

type probeTarget struct {
	spec       probeSpec
	state      string
	succ, fail int
	next       time.Time
	running    bool
}

// prober probes, in probe mode, every endpoint of every NEG that is a backend of a
// health-checked backend service. One scheduler goroutine (run) keeps the target set in step
// with the state (on every change signal) and starts due probes, at most maxParallelProbe at
// once, each bounded by the check's timeout; targets that go away are forgotten and their
// in-flight probes' results dropped. run returns, after waiting for in-flight probes, when the
// server closes. Nothing else runs in the background.
type prober struct {
	s       *Server
	dirty   chan struct{}
	sem     chan struct{}
	wg      sync.WaitGroup
	client  *http.Client
	dialer  *net.Dialer
	mu      sync.Mutex
	targets map[probeKey]*probeTarget
}

func newProber(s *Server) *prober {
	p := &prober{s: s, dirty: make(chan struct{}, 1), sem: make(chan struct{}, maxParallelProbe), targets: map[probeKey]*probeTarget{}}
	p.dialer = &net.Dialer{Control: loopbackOnly}
	p.client = &http.Client{
		Transport: &http.Transport{DialContext: p.dialer.DialContext, DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is not a 200: unhealthy, as in GCE
		},
	}
	return p
}

// loopbackOnly refuses to connect anywhere outside 127.0.0.0/8.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("fakegce: refusing to probe %s outside 127.0.0.0/8", address)
	}
	return nil
}

func (p *prober) state(k probeKey) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.targets[k]; t != nil {
		return t.state
	}
	return "UNKNOWN"
}

func (p *prober) run(ctx context.Context) {
	defer p.wg.Wait()
	tick := time.NewTicker(probeTick)
	defer tick.Stop()
	p.reconcile()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.dirty:
			p.reconcile()
		case <-tick.C:
		}
		p.launchDue(ctx)
	}
}

// reconcile makes the target set match the state.
func (p *prober) reconcile() {
	want := map[probeKey]probeSpec{}
	s := p.s
	s.mu.RLock()
	for _, b := range s.st.backends {
		hc := s.st.hcs[b.hc]
		if !b.hasHC() || hc == nil {
			continue
		}
		spec := specOf(hc.obj)
		c4, c6 := ipFamilies(b.obj.IpAddressSelectionPolicy)
		for _, g := range b.groups {
			if n := s.st.negs[g]; n != nil {
				for e := range n.eps {
					if c4 && e.IP != "" {
						want[probeKey{b.hc, e, false}] = spec
					}
					if c6 && e.IPv6 != "" {
						want[probeKey{b.hc, e, true}] = spec
					}
				}
			}
		}
	}
	s.mu.RUnlock()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.targets {
		if _, ok := want[k]; !ok {
			delete(p.targets, k)
		}
	}
	for k, spec := range want {
		t := p.targets[k]
		switch {
		case t == nil:
			p.targets[k] = &probeTarget{spec: spec, state: "UNKNOWN", next: now}
		case t.spec != spec:
			t.spec, t.succ, t.fail, t.next = spec, 0, 0, now
		}
	}
}

// launchDue starts the probes that are due, as far as the parallelism bound allows.
func (p *prober) launchDue(ctx context.Context) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, t := range p.targets {
		if t.running || t.next.After(now) {
			continue
		}
		select {
		case p.sem <- struct{}{}:
		default:
			return
		}
		t.running = true
		p.wg.Add(1)
		go p.probe(ctx, k, t, t.spec, now)
	}
}

func (p *prober) probe(ctx context.Context, k probeKey, t *probeTarget, spec probeSpec, start time.Time) {
	defer p.wg.Done()
	defer func() { <-p.sem }()
	ok := p.check(ctx, k.addr(), k.ep.Port, spec)
	p.mu.Lock()
	defer p.mu.Unlock()
	t.running = false
	if p.targets[k] != t || t.spec != spec {
		return // target removed or changed meanwhile
	}
	t.next = start.Add(spec.interval)
	if ok {
		t.succ, t.fail = t.succ+1, 0
		if t.succ >= spec.healthy {
			t.state = "HEALTHY"
		}
	} else {
		t.succ, t.fail = 0, t.fail+1
		if t.fail >= spec.unhealthy {
			t.state = "UNHEALTHY"
		}
	}
}

// check probes one address of an endpoint (serving port epPort) once and reports success.
func (p *prober) check(ctx context.Context, ip string, epPort int64, spec probeSpec) bool {
	host, ok := LoopbackFor(ip)
	port := spec.port
	if port == 0 {
		port = epPort
	}
	if !ok || port <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, spec.timeout)
	defer cancel()
	addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
	if spec.protocol == "HTTP" {
		return p.checkHTTP(ctx, addr, spec)
	}
	return p.checkTCP(ctx, addr, spec)
}

// checkHTTP succeeds on status 200 (and, if set, `response` within the first 1024 bytes).
func (p *prober) checkHTTP(ctx context.Context, addr string, spec probeSpec) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+spec.path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "GoogleHC/1.0")
	if spec.host != "" {
		req.Host = spec.host
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeReadLimit))
	return resp.StatusCode == http.StatusOK && (spec.response == "" || bytes.Contains(body, []byte(spec.response)))
}

// checkTCP succeeds when the connection opens (and, if set, `request` is sent and the reply
// starts with `response`).
func (p *prober) checkTCP(ctx context.Context, addr string, spec probeSpec) bool {
	conn, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if spec.request != "" {
		if _, err := io.WriteString(conn, spec.request); err != nil {
			return false
		}
	}
	if spec.response == "" {
		return true
	}
	buf := make([]byte, len(spec.response))
	_, err = io.ReadFull(conn, buf)
	return err == nil && string(buf) == spec.response
}
