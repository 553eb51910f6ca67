package bench

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/neg-controller/neg-controller/test/podsim"
)

// Address plan of the simulated nodes (podsim.DefaultNodes): at most podsim.MaxDefaultNodes
// nodes of one /24 pod range each, of which podsim hands out 253 addresses.
const (
	podsPerSimNode = 253
	// curveReserveMiB is left free for the other jobs of a shared machine when deciding whether
	// the next step fits.
	curveReserveMiB = 3072
)

// curvePoint is what one step of the scale curve measured, once every NEG was exact.
type curvePoint struct {
	Pods      int  `json:"pods"`
	Services  int  `json:"services"`
	NEGs      int  `json:"negs"`
	Converged bool `json:"converged"`
	// StepSeconds: first create of the step → every NEG of every Service exact.
	StepSeconds float64 `json:"stepSeconds"`
	// EndpointChanges: endpoints the step added (one per new pod, all selected).
	EndpointChanges int     `json:"endpointChanges"`
	RSSMiB          float64 `json:"controllerVmRssMiB"`
	HWMMiB          float64 `json:"controllerVmHwmMiB"`
	HeapInuseMiB    float64 `json:"controllerHeapInuseMiB"`
	CPUSeconds      float64 `json:"controllerCpuSeconds"`
	CPUPer1kChanges float64 `json:"cpuSecondsPer1000Changes"`
	SyncP99         float64 `json:"syncP99Seconds"`
	Syncs           int     `json:"syncs"`
	// ObjectsAdded = pods + EndpointSlices (one per Service at 10 pods) + Services of the step;
	// the per-object numbers are estimates: the step's controller RSS (heap) growth divided by
	// them, so they include everything else that grew with the step (NEG state, svcneg objects).
	ObjectsAdded  int     `json:"objectsAdded"`
	RSSPerObjKiB  float64 `json:"rssPerObjectKiBEstimate"`
	HeapPerObjKiB float64 `json:"heapPerObjectKiBEstimate"`
	// StackMiB: VmRSS of every process of the stack plus its work directory (etcd's data, on
	// tmpfs); MemAvailableMiB: /proc/meminfo after the step.
	StackMiB        float64    `json:"stackMiB"`
	MemAvailableMiB float64    `json:"memAvailableMiB"`
	Procs           []ProcCost `json:"-"`
}

// ScaleCurve grows one stack through sc.CurvePoints pods (CurvePodsPerSvc per Service),
// with the controller started once, and records the controller's cost at each point.
func (b *Bench) ScaleCurve() *Result {
	res := newResult("scale-curve")
	t0 := time.Now()
	defer func() { res.Seconds = round(time.Since(t0).Seconds(), 1) }()
	sc := b.sc
	points := sc.CurvePoints
	top := points[len(points)-1]
	if b.curveMaxPods > 0 {
		top = min(top, b.curveMaxPods)
	}
	perZone := curveNodesPerZone(top, sc.CurvePodsPerNode, 3)
	err := b.withStack("scale-curve", perZone, func(e *env) (ferr error) {
		defer func() {
			if ferr != nil {
				res.fail(e, ferr)
			}
		}()
		if err := e.createNamespace(b.ctx, curveNS); err != nil {
			return err
		}
		if err := e.startController(raisedFlags...); err != nil {
			return err
		}
		res.Controller = e.controllerArgs()
		base, err := e.ctrl.MetricsURL(30 * time.Second)
		if err != nil {
			return err
		}
		res.Workload = fmt.Sprintf("one stack (%d nodes in %d zones, sized for %d pods per node at the last point), the controller started once with raised client-side GCE budgets "+
			"(`%s`) and fakegce's quota raised to %d per minute per group, so the curve measures the controller, not the quota. "+
			"Then grown step by step to %v pods: each step creates the new annotated Services (%d pods each, 1 EndpointSlice each) "+
			"and their pods (spec.nodeName set, status by podsim) and waits until every NEG of every Service is exact "+
			"(step capped at %s). At each point: controller VmRSS/VmHWM (/proc), CPU seconds of the step ÷ its endpoint changes "+
			"× 1,000, sync latency p99 from the step's bucket deltas of neg_controller_sync_duration_seconds (histogram_quantile "+
			"interpolation in ×2 buckets), and an estimate of memory per informer object: the step's RSS (and Go heap in use) "+
			"growth ÷ the pods + EndpointSlices + Services it added. Before each step the bench checks MemAvailable against the "+
			"previous step's growth of the whole stack (all processes' RSS + etcd's tmpfs data) scaled to the next step, keeping "+
			"%d MiB free for the shared machine, and the previous step's wall time scaled likewise against the cap.",
			len(e.nodes), len(e.zones), sc.CurvePodsPerNode, strings.Join(raisedFlags, " "), raisedQuotaPerMinute, points, sc.CurvePodsPerSvc,
			sc.CurveStepTimeout, curveReserveMiB)
		pts, stop, err := b.curveSteps(e, base, res)
		if len(pts) > 0 {
			res.Details = map[string]any{"points": pts, "stoppedBecause": stop}
			curveReport(res, pts, stop)
		}
		return err
	})
	if err != nil && res.Error == "" {
		res.fail(nil, err)
	}
	return res
}

const curveNS = "bench-curve"

// curveNodesPerZone is how many nodes per zone hold top pods at perNode each: at least 2, at
// most what the address plan holds (podsim.MaxDefaultNodes over the zones).
func curveNodesPerZone(top, perNode, zones int) int {
	return min(podsim.MaxDefaultNodes/zones, max(2, int(math.Ceil(float64(top)/float64(perNode*zones)))))
}

// curveSteps runs the steps; pts[0] is the idle controller (0 pods).
func (b *Bench) curveSteps(e *env, base string, res *Result) (pts []curvePoint, stop string, err error) {
	sc := b.sc
	// The idle point: nodes only, after the controller's start-up.
	time.Sleep(5 * time.Second)
	idle, err := e.curveSample(b.ctx, base)
	if err != nil {
		return nil, "", err
	}
	idle.Converged = true
	idle.StackMiB, idle.MemAvailableMiB = e.stackMiB(), memAvailableMiB()
	pts = append(pts, idle)
	capacity := len(e.nodes) * podsPerSimNode
	k := 0 // pods laid out so far (round-robin over the nodes)
	for i, want := range sc.CurvePoints {
		prev := pts[len(pts)-1]
		if b.curveMaxPods > 0 && want > b.curveMaxPods {
			return pts, fmt.Sprintf("stopped at %d pods: --curve-max-pods=%d", prev.Pods, b.curveMaxPods), nil
		}
		if want > capacity {
			return pts, fmt.Sprintf("stopped at %d pods: the %d simulated nodes hold at most %d pods (podsim's address plan: "+
				"at most %d nodes with a /24 pod range each)", prev.Pods, len(e.nodes), capacity, podsim.MaxDefaultNodes), nil
		}
		if i > 0 {
			before := pts[len(pts)-2]
			scaleBy := float64(want-prev.Pods) / float64(prev.Pods-before.Pods)
			need := (prev.StackMiB - before.StackMiB) * scaleBy * 1.25
			if avail := memAvailableMiB(); need > avail-curveReserveMiB {
				return pts, fmt.Sprintf("stopped at %d pods: the step to %d needs ≈ %.0f MiB more (the last step's whole-stack growth "+
					"%.0f MiB × %.1f × 1.25) and %.0f MiB are available, %d MiB of which are kept for the shared machine",
					prev.Pods, want, need, prev.StackMiB-before.StackMiB, scaleBy, avail, curveReserveMiB), nil
			}
			if proj := prev.StepSeconds * scaleBy; proj > sc.CurveStepTimeout.Seconds() {
				return pts, fmt.Sprintf("stopped at %d pods: the step to %d would take ≈ %.0f s (the last step's %.0f s × %.1f), "+
					"more than the %s cap per step", prev.Pods, want, proj, prev.StepSeconds, scaleBy, sc.CurveStepTimeout), nil
			}
		}
		pt, err := b.curveStep(e, base, prev, want, &k)
		if err != nil {
			return pts, "", err
		}
		pts = append(pts, pt)
		say("scale-curve: %d pods: step %.0f s, controller RSS %.0f MiB (HWM %.0f), %.2f CPU s per 1,000 changes, sync p99 %.3f s, stack %.0f MiB, %.0f MiB available",
			pt.Pods, pt.StepSeconds, pt.RSSMiB, pt.HWMMiB, pt.CPUPer1kChanges, pt.SyncP99, pt.StackMiB, pt.MemAvailableMiB)
		if !pt.Converged {
			return pts, fmt.Sprintf("stopped at %d pods: that step did not finish within the %s cap", want, sc.CurveStepTimeout), nil
		}
	}
	return pts, fmt.Sprintf("every point ran (up to %d pods)", pts[len(pts)-1].Pods), nil
}

// curveStep grows the stack from prev.Pods to want pods and measures it.
func (b *Bench) curveStep(e *env, base string, prev curvePoint, want int, k *int) (curvePoint, error) {
	sc := b.sc
	per := sc.CurvePodsPerSvc
	var svcs []svcRef
	var pods []podSpec
	for i := prev.Pods / per; i < want/per; i++ {
		s := svcRef{ns: curveNS, name: fmt.Sprintf("svc-%05d", i)}
		svcs = append(svcs, s)
		for j := range per {
			pods = append(pods, podSpec{ns: s.ns, name: fmt.Sprintf("%s-%d", s.name, j), app: s.name, node: e.nodes[*k%len(e.nodes)], serve: true})
			*k++
		}
	}
	before, err := scrapeMetrics(b.ctx, base)
	if err != nil {
		return curvePoint{}, err
	}
	cpu0, err := readProc(e.ctrl.PID())
	if err != nil {
		return curvePoint{}, err
	}
	e.smp.begin()
	profile := fmt.Sprintf("scale-curve-%dpods", want)
	stopPeak := e.watchPeak(b.ctx, profile)
	t0 := time.Now()
	deadline := t0.Add(sc.CurveStepTimeout)
	say("scale-curve: %d → %d pods (%d new Services)", prev.Pods, want, len(svcs))
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	defer cancel()
	capped := false
	werr := e.createServices(ctx, svcs)
	if werr == nil {
		werr = e.createPods(ctx, pods)
	}
	e.allServices = append(e.allServices, svcs...)
	if werr == nil {
		werr = e.waitPods(b.ctx, svcs, per, time.Until(deadline))
	}
	if werr == nil {
		werr = e.waitSlices(b.ctx, svcs, per, time.Until(deadline))
	}
	var conv convergence
	if werr == nil {
		interval := 250 * time.Millisecond
		if len(e.allServices) > 1000 {
			interval = time.Second
		}
		conv, werr = e.waitConverged(b.ctx, e.allServices, t0, interval, max(time.Until(deadline), 0), nil)
	}
	if werr != nil && time.Now().Before(deadline) && b.ctx.Err() == nil {
		return curvePoint{}, werr // a harness failure, not the cap
	}
	if werr != nil {
		say("scale-curve: step to %d pods capped: %v", want, werr)
	}
	capped = werr != nil || !conv.Converged
	stopPeak()
	pt, err := e.curveSample(b.ctx, base)
	if err != nil {
		return curvePoint{}, err
	}
	// After the sample: the dump forces a GC.
	e.dumpProfiles(b.ctx, profile)
	pt.Procs = e.smp.end()
	pt.Pods, pt.Services, pt.NEGs = want, len(e.allServices), len(e.allServices)*len(e.zones)
	pt.Converged = !capped
	pt.StepSeconds = round(time.Since(t0).Seconds(), 1)
	if conv.Converged {
		pt.StepSeconds = conv.Seconds
	}
	pt.EndpointChanges = len(pods)
	if capped { // count what the step got to: its pods running with an IP
		pt.EndpointChanges = 0
		for _, s := range svcs {
			pt.EndpointChanges += len(e.runningPods(s))
		}
	}
	pt.CPUSeconds = round(pt.CPUSeconds-cpu0.cpuSec, 2)
	pt.CPUPer1kChanges = round(pt.CPUSeconds/float64(max(pt.EndpointChanges, 1))*1000, 2)
	after, err := scrapeMetrics(b.ctx, base)
	if err != nil {
		return curvePoint{}, err
	}
	q, n := histQuantile(0.99, histDelta(before.histogram("neg_controller_sync_duration_seconds"), after.histogram("neg_controller_sync_duration_seconds")))
	pt.SyncP99, pt.Syncs = round(q, 4), int(n)
	pt.ObjectsAdded = pt.EndpointChanges + 2*len(svcs)
	pt.RSSPerObjKiB = round((pt.RSSMiB-prev.RSSMiB)*1024/float64(pt.ObjectsAdded), 2)
	pt.HeapPerObjKiB = round((pt.HeapInuseMiB-prev.HeapInuseMiB)*1024/float64(pt.ObjectsAdded), 2)
	pt.StackMiB, pt.MemAvailableMiB = e.stackMiB(), memAvailableMiB()
	return pt, nil
}

// curveSample reads the controller's RSS, HWM and CPU (/proc) and Go heap in use (/metrics).
func (e *env) curveSample(ctx context.Context, base string) (curvePoint, error) {
	var pt curvePoint
	s, err := readProc(e.ctrl.PID())
	if err != nil {
		return pt, err
	}
	m, err := scrapeMetrics(ctx, base)
	if err != nil {
		return pt, err
	}
	pt.RSSMiB, pt.HWMMiB, pt.CPUSeconds = round(float64(s.rssKiB)/1024, 1), round(float64(s.hwmKiB)/1024, 1), s.cpuSec
	pt.HeapInuseMiB = round(m.sample("go_memstats_heap_inuse_bytes")/(1<<20), 1)
	return pt, nil
}

// stackMiB is the VmRSS of every tracked process plus the size of the stack's work directory
// (etcd's data directory is on tmpfs, so it is memory too).
func (e *env) stackMiB() float64 {
	var kib int64
	for _, pid := range e.smp.pids() {
		if s, err := readProc(pid); err == nil {
			kib += s.rssKiB
		}
	}
	var bytes int64
	_ = filepath.WalkDir(e.st.WorkDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				bytes += fi.Size()
			}
		}
		return nil
	})
	return round(float64(kib)/1024+float64(bytes)/(1<<20), 1)
}

// memAvailableMiB is MemAvailable from /proc/meminfo (+Inf when unreadable).
func memAvailableMiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return math.Inf(1)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			var kib float64
			if _, err := fmt.Sscan(strings.TrimSpace(v), &kib); err == nil {
				return round(kib/1024, 0)
			}
		}
	}
	return math.Inf(1)
}
