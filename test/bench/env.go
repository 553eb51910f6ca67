package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/test/stack"
)

// namingUID is passed as --cluster-uid so the bench can compute every generated NEG name.
const namingUID = "5eedbe4c00000001"

// operationLatency is fakegce's operation latency in every scenario (the churn value).
const operationLatency = 200 * time.Millisecond

// env is one running stack plus what the bench watches in it.
type env struct {
	st       *stack.Stack
	kube     kubernetes.Interface // bench's own client, high client-side limits
	namer    naming.Namer
	nodes    []string          // node names, interleaved by zone (a0, b0, c0, a1, ...)
	nodeZone map[string]string // node → zone
	zones    []string

	podIdx  cache.Indexer // pods, indexed by serviceIndex
	slices  *sliceTracker
	factory informers.SharedInformerFactory
	stopInf chan struct{}

	// allServices are every bench Service in the stack (restart waits for all their NEGs).
	allServices []svcRef

	smp   *sampler
	ctrl  *stack.Controller
	flags []string
	logs  []string // controller log paths, in start order
	// profileDir receives the controller's Go profiles (bench --pprof; empty: not profiled,
	// and the controller runs without its profiling server).
	profileDir string
}

// serviceIndex indexes pods by the Service that may select them: namespace/app-label.
const serviceIndex = "bench/service"

func startEnv(ctx context.Context, workDir string, nodesPerZone int) (*env, error) {
	return startEnvWith(ctx, stack.Options{
		WorkDir: workDir,
		GCE: fakegce.Config{
			OperationLatency:  operationLatency,
			RequestLogSize:    300000,
			FixedHealthyDelay: gateHealthyDelay,
		},
		NodesPerZone: nodesPerZone,
		PodMaxGrace:  time.Second,
	}, "bench (fakegce+podsim+harness)")
}

// startEnvWith starts a stack with opts and wraps it: the bench's own client and informers,
// nodes interleaved by zone, the controller's namespace, and a process sampler that names the
// bench's own process harness.
func startEnvWith(ctx context.Context, opts stack.Options, harness string) (*env, error) {
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, err
	}
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	e := &env{st: st, namer: naming.NewNamer(namingUID), nodeZone: map[string]string{}, stopInf: make(chan struct{})}
	cfg := rest.CopyConfig(st.Cluster.RESTConfig)
	cfg.QPS, cfg.Burst = 2000, 4000
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		st.Stop()
		return nil, err
	}
	byZone := map[string][]string{}
	for _, n := range st.Nodes {
		e.nodeZone[n.Name] = n.Zone
		if len(byZone[n.Zone]) == 0 {
			e.zones = append(e.zones, n.Zone)
		}
		byZone[n.Zone] = append(byZone[n.Zone], n.Name)
	}
	for i := range opts.NodesPerZone {
		for _, z := range e.zones {
			if i < len(byZone[z]) {
				e.nodes = append(e.nodes, byZone[z][i])
			}
		}
	}
	// The controller's own namespace (webhook certificate Secret), as the manifests create it;
	// without it the controller retries every 2 s for nothing.
	if err := e.createNamespace(ctx, "neg-controller"); err != nil {
		st.Stop()
		return nil, err
	}
	if err := e.startInformers(ctx); err != nil {
		st.Stop()
		return nil, err
	}
	e.smp = newSampler(500 * time.Millisecond)
	for name, pid := range st.Cluster.PIDs() {
		e.smp.track(name, pid)
	}
	e.smp.track(harness, os.Getpid())
	return e, nil
}

// stripManagedFields keeps the informer caches small.
func stripManagedFields(obj any) (any, error) {
	if a, ok := obj.(metav1.Object); ok {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

func (e *env) startInformers(ctx context.Context) error {
	e.factory = informers.NewSharedInformerFactoryWithOptions(e.kube, 0, informers.WithTransform(stripManagedFields))
	podInf := e.factory.Core().V1().Pods().Informer()
	if err := podInf.AddIndexers(cache.Indexers{serviceIndex: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Labels[appLabel] == "" {
			return nil, nil
		}
		return []string{p.Namespace + "/" + p.Labels[appLabel]}, nil
	}}); err != nil {
		return err
	}
	e.podIdx = podInf.GetIndexer()
	sliceInf := e.factory.Discovery().V1().EndpointSlices().Informer()
	e.slices = newSliceTracker()
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.slices.update(obj, false) },
		UpdateFunc: func(_, obj any) { e.slices.update(obj, false) },
		DeleteFunc: func(obj any) { e.slices.update(obj, true) },
	}); err != nil {
		return err
	}
	e.factory.Start(e.stopInf)
	if !cache.WaitForCacheSync(ctx.Done(), podInf.HasSynced, sliceInf.HasSynced) {
		return fmt.Errorf("bench informers did not sync")
	}
	return nil
}

func (e *env) stop() {
	if e.ctrl != nil && !e.ctrl.Exited() {
		_ = e.ctrl.Stop(10 * time.Second)
	}
	close(e.stopInf)
	e.factory.Shutdown()
	e.smp.close()
	e.st.Stop()
}

// baseFlags are the controller flags of every scenario (the stack adds kubeconfig, project,
// region, endpoint, --gce-operation-poll-interval=50ms and --cluster-name).
var baseFlags = []string{"--cluster-uid=" + namingUID, "--v=2"}

// raisedQuotaPerMinute is fakegce's rate quota per group while the controller runs with
// raisedFlags: above the client budgets those flags set in any group (36,000/min of mutations
// and of operation reads, 12,000/min of gets and of lists), so the client budgets bind, as in a
// project granted that quota.
const raisedQuotaPerMinute = 60000

// defaultResync is the controller's default --resync-period.
const defaultResync = 10 * time.Minute

// quotaFor is fakegce's rate quota while the controller runs with flags. Every scenario runs
// against GCE's documented default quota (1,500 requests per minute per group; the bench's own
// few set-up calls draw from it too), except:
//   - with raisedFlags: raisedQuotaPerMinute in every group (the quota a project would need
//     for that client budget);
//   - with a --resync-period shorter than the default (steady, rollout compress time): the
//     default scaled by the same factor, so the quota per resync cycle is GCE's.
func quotaFor(flags []string) *fakegce.QuotaConfig {
	limits := map[string]int{}
	scale := 1.0
	for _, f := range flags {
		if f == fmt.Sprintf("--gce-mutations-per-minute=%d", raisedMutationsPerMinute) {
			for _, g := range fakegce.QuotaGroupNames() {
				limits[g] = raisedQuotaPerMinute
			}
			return &fakegce.QuotaConfig{Limits: limits}
		}
		if v, ok := strings.CutPrefix(f, "--resync-period="); ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 && d < defaultResync {
				scale = float64(defaultResync) / float64(d)
			}
		}
	}
	if scale > 1 {
		for _, g := range fakegce.QuotaGroupNames() {
			limits[g] = int(float64(fakegce.DefaultQuotaPerMinute) * scale)
		}
	}
	return &fakegce.QuotaConfig{Limits: limits}
}

// stopController stops the running controller, if any.
func (e *env) stopController() error {
	if e.ctrl == nil || e.ctrl.Exited() {
		return nil
	}
	return e.ctrl.Stop(15 * time.Second)
}

// startController (re)starts the controller with baseFlags + extra and tracks its process.
func (e *env) startController(extra ...string) error {
	if e.ctrl != nil && !e.ctrl.Exited() {
		if err := e.ctrl.Stop(15 * time.Second); err != nil {
			klog.Background().Info("Stopping controller", "err", err)
		}
	}
	flags := append(append([]string(nil), baseFlags...), extra...)
	if err := e.st.GCE.SetQuota(quotaFor(flags)); err != nil {
		return err
	}
	if e.profileDir != "" {
		flags = append(flags, pprofFlags...)
	}
	c, err := e.st.StartController("", flags...)
	if err != nil {
		return err
	}
	e.ctrl, e.flags = c, flags
	e.logs = append(e.logs, c.LogPath)
	e.smp.track("neg-controller", c.PID())
	return nil
}

// controllerArgs renders the full command line for the report (kubeconfig path shortened).
func (e *env) controllerArgs() string {
	args := e.st.ControllerArgs("KUBECONFIG", e.flags...)
	for i, a := range args {
		if strings.HasPrefix(a, "--gce-endpoint=") {
			args[i] = "--gce-endpoint=http://127.0.0.1:PORT"
		}
	}
	return strings.Join(args, " ")
}

// controllerAlive returns an error with the log tail when the controller has exited.
func (e *env) controllerAlive() error {
	if e.ctrl != nil && e.ctrl.Exited() {
		return fmt.Errorf("neg-controller exited; log %s tail:\n%s", e.ctrl.LogPath, e.ctrl.LogTail(30))
	}
	return nil
}

// logExcerpt returns the last n lines of the current controller log that match any of the
// substrings (all lines if none given).
func (e *env) logExcerpt(n int, match ...string) string {
	if e.ctrl == nil {
		return ""
	}
	b, err := os.ReadFile(e.ctrl.LogPath)
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" {
			continue
		}
		ok := len(match) == 0
		for _, m := range match {
			ok = ok || strings.Contains(l, m)
		}
		if ok {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

func logDir(workDir string) string { return filepath.Join(workDir, "logs") }
