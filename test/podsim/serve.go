package podsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// Serving pods (Config.Serve)
//
// Each running pod that is not hostNetwork gets, per container, an HTTP server on
// fakegce.LoopbackFor(podIP) and each of the container's TCP ports (plus the port of its httpGet
// readiness probe): pod IP 10.64.1.5 with containerPort 8080 answers at 127.64.1.5:8080, where
// the emulated load balancer and health checker of pkg/fakegce reach it. It answers every path
// with status 200 and the pod name as body, and header X-Podsim-Pod. Knobs for tests:
//   - annotation HTTPStatusAnnotation ("503") makes every answer, probes included, that status;
//   - query parameter sleep (a Go duration, e.g. ?sleep=3s, at most MaxSleep) delays the answer,
//     for requests in flight during a rollout.
//
// Readiness. A container with an httpGet readinessProbe is ready when the kubelet's rules say so:
// probes start initialDelaySeconds (at most 30) after the container started, every
// periodSeconds (1..10; default 10), each with timeoutSeconds (default 1, at most the period);
// it turns ready after successThreshold consecutive successes (status 200..399) and unready
// after failureThreshold consecutive failures (both at most 10; defaults 1 and 3). Probes use
// plain HTTP even for scheme HTTPS, go to the loopback address and ignore httpGet.host. A pod
// whose containers have no httpGet readiness probe keeps the ReadyDelay behaviour; otherwise
// ContainersReady (and with it Ready) is True when every probed container is ready. Probing
// stops when the pod starts terminating (the status is then left as it is).
//
// Termination, like the kubelet: when a pod gets its deletionTimestamp, each container runs its
// preStop hook — only sleeps are emulated: lifecycle.preStop.sleep.seconds, or an exec command
// ["sleep","N"] or ["/bin/sh","-c","... sleep N ..."] (the first sleep of the script) — while
// its server keeps serving; then (SIGTERM) the server closes its listeners and lets requests in
// flight finish. At the grace deadline (the pod's grace period, capped by MaxGrace) whatever
// still runs is cut. When every container stopped, the pod object is deleted (grace 0). So a pod
// without a preStop hook stops serving at once and is deleted as soon as its requests finished.
//
// Servers stop when the pod goes away and when Run returns.

// HTTPStatusAnnotation on a served pod sets the HTTP status its servers answer (default 200).
const HTTPStatusAnnotation = "podsim.neg-controller.test/http-status"

// MaxSleep caps the ?sleep= delay of a served pod's answer.
const MaxSleep = 5 * time.Minute

// Caps and kubelet defaults of readiness probes.
const (
	maxInitialDelay     = 30 * time.Second
	maxProbePeriod      = 10 * time.Second
	defaultProbePeriod  = 10 * time.Second
	defaultProbeTimeout = time.Second
	maxThreshold        = 10
)

// readinessProbe is one container's httpGet readiness probe, resolved and capped.
type readinessProbe struct {
	container         string
	port              int32 // 0: the named port does not exist (the probe always fails)
	path              string
	initialDelay      time.Duration
	period, timeout   time.Duration
	success, failures int
}

// readinessProbeOf returns the container's httpGet readiness probe, if it has one.
func readinessProbeOf(c *corev1.Container) (readinessProbe, bool) {
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		return readinessProbe{}, false
	}
	rp := readinessProbe{container: c.Name, port: resolvePort(c, p.HTTPGet.Port), path: p.HTTPGet.Path,
		initialDelay: min(time.Duration(p.InitialDelaySeconds)*time.Second, maxInitialDelay),
		period:       time.Duration(p.PeriodSeconds) * time.Second, timeout: time.Duration(p.TimeoutSeconds) * time.Second,
		success: int(p.SuccessThreshold), failures: int(p.FailureThreshold)}
	if !strings.HasPrefix(rp.path, "/") {
		rp.path = "/" + rp.path
	}
	if rp.period <= 0 {
		rp.period = defaultProbePeriod
	}
	rp.period = min(rp.period, maxProbePeriod)
	if rp.timeout <= 0 {
		rp.timeout = defaultProbeTimeout
	}
	rp.timeout = min(rp.timeout, rp.period)
	if rp.success <= 0 {
		rp.success = 1
	}
	if rp.failures <= 0 {
		rp.failures = 3
	}
	rp.success, rp.failures = min(rp.success, maxThreshold), min(rp.failures, maxThreshold)
	return rp, true
}

// resolvePort resolves a probe port (number or container port name); 0 if the name is unknown.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return int32(n)
	}
	return 0
}

// servedPorts returns the TCP ports the container listens on: its ports and its readiness
// probe's port.
func servedPorts(c *corev1.Container) []int32 {
	var out []int32
	add := func(p int32) {
		if p > 0 && p < 65536 && !containsPort(out, p) {
			out = append(out, p)
		}
	}
	for _, cp := range c.Ports {
		if cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP {
			add(cp.ContainerPort)
		}
	}
	if rp, ok := readinessProbeOf(c); ok {
		add(rp.port)
	}
	return out
}

func containsPort(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// shSleepRE finds the first `sleep N` of a shell script.
var shSleepRE = regexp.MustCompile(`(?:^|[;&|(\s])(?:/usr)?(?:/bin/)?sleep\s+([0-9.]+[smhd]?)(?:$|[;&|)\s])`)

// preStopSleep returns how long the container's preStop hook sleeps: lifecycle.preStop.sleep,
// or an exec of sleep N (directly or as the first sleep of a `sh -c` script). Other hooks: 0.
func preStopSleep(c *corev1.Container) time.Duration {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return 0
	}
	h := c.Lifecycle.PreStop
	if h.Sleep != nil {
		return time.Duration(max(h.Sleep.Seconds, 0)) * time.Second
	}
	if h.Exec == nil {
		return 0
	}
	cmd := h.Exec.Command
	switch {
	case len(cmd) == 2 && (cmd[0] == "sleep" || strings.HasSuffix(cmd[0], "/sleep")):
		return parseSleep(cmd[1])
	case len(cmd) >= 3 && isShell(cmd[0]) && strings.HasPrefix(cmd[1], "-") && strings.Contains(cmd[1], "c"):
		if m := shSleepRE.FindStringSubmatch(cmd[2]); m != nil {
			return parseSleep(m[1])
		}
	}
	return 0
}

func isShell(s string) bool {
	i := strings.LastIndexByte(s, '/')
	switch s[i+1:] {
	case "sh", "bash", "ash", "dash", "zsh":
		return true
	}
	return false
}

// parseSleep parses sleep(1)'s argument: a non-negative number with an optional s, m, h or d
// suffix. Bad input: 0.
func parseSleep(arg string) time.Duration {
	unit := time.Second
	switch {
	case strings.HasSuffix(arg, "s"):
		arg = strings.TrimSuffix(arg, "s")
	case strings.HasSuffix(arg, "m"):
		arg, unit = strings.TrimSuffix(arg, "m"), time.Minute
	case strings.HasSuffix(arg, "h"):
		arg, unit = strings.TrimSuffix(arg, "h"), time.Hour
	case strings.HasSuffix(arg, "d"):
		arg, unit = strings.TrimSuffix(arg, "d"), 24*time.Hour
	}
	f, err := strconv.ParseFloat(arg, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0
	}
	return time.Duration(f * float64(unit))
}

// podRuntime is what runs for one served pod: per container an HTTP server and a readiness
// prober, and the termination sequence. Its goroutines are counted in the sim's serveWG.
type podRuntime struct {
	key, name string
	logger    klog.Logger
	wg        *sync.WaitGroup
	onChange  func() // re-queues the pod (readiness changed, termination done)
	ctx       context.Context
	cancel    context.CancelFunc // stops everything at once
	status    atomic.Int32       // HTTP status to answer

	mu         sync.Mutex
	started    bool
	servers    map[string]*http.Server // by container
	bound      map[string]bool         // "host:port" listening
	probes     map[string]*probeState  // by container
	probeStop  context.CancelFunc
	terminated chan struct{} // nil until termination starts; closed when all containers stopped
}

// probeState is the readiness of one probed container.
type probeState struct {
	ready      bool
	succ, fail int
}

func newPodRuntime(parent context.Context, key, name string, logger klog.Logger, wg *sync.WaitGroup, onChange func()) *podRuntime {
	rt := &podRuntime{key: key, name: name, logger: logger, wg: wg, onChange: onChange,
		servers: map[string]*http.Server{}, bound: map[string]bool{}, probes: map[string]*probeState{}}
	rt.ctx, rt.cancel = context.WithCancel(parent)
	rt.status.Store(http.StatusOK)
	return rt
}

// ServeHTTP answers as the pod.
func (rt *podRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("sleep"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			t := time.NewTimer(min(d, MaxSleep))
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Podsim-Pod", rt.name)
	w.WriteHeader(int(rt.status.Load()))
	_, _ = io.WriteString(w, rt.name)
}

// ensure brings the runtime in step with the running pod: binds the listeners not yet bound
// (a failed bind is logged and retried on the next sync), applies HTTPStatusAnnotation and
// starts the readiness probers once. startedAt is when the containers started.
func (rt *podRuntime) ensure(pod *corev1.Pod, podIP string, startedAt time.Time) {
	status := http.StatusOK
	if v, ok := pod.Annotations[HTTPStatusAnnotation]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 200 && n <= 599 {
			status = n
		}
	}
	rt.status.Store(int32(status))
	host, ok := fakegce.LoopbackFor(podIP)
	if !ok {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.terminated != nil || rt.ctx.Err() != nil {
		return
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range servedPorts(c) {
			addr := net.JoinHostPort(host, strconv.Itoa(int(p)))
			if rt.bound[addr] {
				continue
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				rt.logger.Error(err, "Cannot serve pod port", "container", c.Name, "address", addr)
				continue
			}
			srv := rt.servers[c.Name]
			if srv == nil {
				srv = &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
				rt.servers[c.Name] = srv
			}
			rt.bound[addr] = true
			rt.wg.Go(func() { _ = srv.Serve(ln) })
		}
	}
	if rt.started {
		return
	}
	rt.started = true
	var pctx context.Context
	pctx, rt.probeStop = context.WithCancel(rt.ctx)
	for i := range pod.Spec.Containers {
		if rp, ok := readinessProbeOf(&pod.Spec.Containers[i]); ok {
			rt.probes[rp.container] = &probeState{}
			rt.wg.Go(func() { rt.probeLoop(pctx, host, rp, startedAt) })
		}
	}
}

// readiness reports whether the pod has httpGet readiness probes and, if so, whether every
// probed container is ready.
func (rt *podRuntime) readiness() (probed, ready bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ready = true
	for _, p := range rt.probes {
		ready = ready && p.ready
	}
	return len(rt.probes) > 0, ready
}

var probeClient = &http.Client{
	Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext:       (&net.Dialer{Control: loopbackOnly}).DialContext,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// loopbackOnly refuses connections outside 127.0.0.0/8: podsim's traffic never leaves the host.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		return fmt.Errorf("podsim: refusing to connect to %s outside 127.0.0.0/8", address)
	}
	return nil
}

// probeLoop probes one container until ctx ends, re-queueing the pod when its readiness flips.
func (rt *podRuntime) probeLoop(ctx context.Context, host string, rp readinessProbe, startedAt time.Time) {
	wait := time.Until(startedAt.Add(rp.initialDelay))
	for {
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		start := time.Now()
		ok := rp.port > 0 && probeOnce(ctx, "http://"+net.JoinHostPort(host, strconv.Itoa(int(rp.port)))+rp.path, rp.timeout)
		if ctx.Err() != nil {
			return
		}
		if rt.record(rp, ok) {
			rt.logger.V(2).Info("Readiness changed", "pod", rt.key, "container", rp.container, "ready", ok)
			rt.onChange()
		}
		wait = time.Until(start.Add(rp.period))
	}
}

// record applies one probe result and reports whether the container's readiness flipped.
func (rt *podRuntime) record(rp readinessProbe, ok bool) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := rt.probes[rp.container]
	was := p.ready
	if ok {
		p.succ, p.fail = p.succ+1, 0
		if p.succ >= rp.success {
			p.ready = true
		}
	} else {
		p.succ, p.fail = 0, p.fail+1
		if p.fail >= rp.failures {
			p.ready = false
		}
	}
	return p.ready != was
}

func probeOnce(ctx context.Context, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "kube-probe/podsim")
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// terminate starts the termination sequence once (see the package comment) and returns a
// channel closed when every container stopped. grace is the time from now to the hard stop.
func (rt *podRuntime) terminate(pod *corev1.Pod, grace time.Duration) <-chan struct{} {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.terminated != nil {
		return rt.terminated
	}
	rt.terminated = make(chan struct{})
	if rt.probeStop != nil {
		rt.probeStop()
	}
	deadline := time.Now().Add(grace)
	var cwg sync.WaitGroup
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		hook, srv := min(preStopSleep(c), grace), rt.servers[c.Name]
		cwg.Add(1)
		rt.wg.Go(func() {
			defer cwg.Done()
			rt.stopContainer(c.Name, srv, hook, deadline)
		})
	}
	done := rt.terminated
	rt.wg.Go(func() {
		cwg.Wait()
		close(done)
		rt.onChange()
	})
	return done
}

// stopContainer runs one container's termination: preStop sleep while serving, then graceful
// shutdown until deadline, then a hard stop.
func (rt *podRuntime) stopContainer(name string, srv *http.Server, hook time.Duration, deadline time.Time) {
	t := time.NewTimer(hook)
	select {
	case <-t.C:
	case <-rt.ctx.Done():
		t.Stop()
	}
	if srv == nil {
		return
	}
	ctx, cancel := context.WithDeadline(rt.ctx, deadline)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = srv.Close()
		rt.logger.V(2).Info("Cut requests in flight at the grace deadline", "pod", rt.key, "container", name)
	}
	rt.logger.V(2).Info("Container stopped serving", "pod", rt.key, "container", name, "preStop", hook)
}

// stop ends everything at once (pod gone, replaced, or podsim stopping): listeners and
// connections closed, probers and termination cut short. It does not wait.
func (rt *podRuntime) stop() {
	rt.cancel()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, srv := range rt.servers {
		_ = srv.Close()
	}
}

// runtimeOf returns the pod's runtime, creating it. Callers hold s.mu.
func (s *sim) runtimeOf(st *podState, key, name string) *podRuntime {
	if st.rt == nil {
		st.rt = newPodRuntime(context.Background(), key, name, s.logger, &s.serveWG, func() { s.queue.Add(key) })
	}
	return st.rt
}

// stopped starts the pod's termination (once) and reports whether its containers stopped.
func (rt *podRuntime) stopped(pod *corev1.Pod, grace time.Duration) bool {
	select {
	case <-rt.terminate(pod, grace):
		return true
	default:
		return false
	}
}

// stopServing stops every served pod and waits for their goroutines (Run's end; the workers
// have stopped).
func (s *sim) stopServing() {
	s.mu.Lock()
	for _, st := range s.states {
		if st.rt != nil {
			st.rt.stop()
		}
	}
	s.mu.Unlock()
	s.serveWG.Wait()
}
