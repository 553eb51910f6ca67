package bench

import (
	"fmt"
	"strings"
)

// curveRSSTargetPods is the point of the RSS target (≤ 150 MiB at 10,000 pods).
const curveRSSTargetPods = 10000

// marginalMiBPerPod is the controller's VmRSS growth per pod between two points.
func marginalMiBPerPod(a, b curvePoint) float64 {
	return (b.RSSMiB - a.RSSMiB) / float64(b.Pods-a.Pods)
}

// curveReport adds the scale curve's table, rows and targets. pts[0] is the idle controller.
func curveReport(res *Result, pts []curvePoint, stop string) {
	var t strings.Builder
	t.WriteString("| Pods | Services | NEGs | Step s | Controller VmRSS MiB | VmHWM MiB | Go heap in use MiB | CPU s per 1,000 endpoint changes | Sync p99 s (syncs) | RSS / heap per object KiB (estimate) | Whole stack MiB | MemAvailable MiB |\n")
	t.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, p := range pts {
		if i == 0 {
			fmt.Fprintf(&t, "| 0 (idle) | 0 | 0 | – | %.1f | %.1f | %.1f | – | – | – | %.0f | %.0f |\n", p.RSSMiB, p.HWMMiB, p.HeapInuseMiB, p.StackMiB, p.MemAvailableMiB)
			continue
		}
		step := fmt.Sprintf("%.1f", p.StepSeconds)
		if !p.Converged {
			step += fmt.Sprintf(" (capped, not exact: %d of the step's %d pods running)", p.EndpointChanges, p.Pods-pts[i-1].Pods)
		}
		fmt.Fprintf(&t, "| %d | %d | %d | %s | %.1f | %.1f | %.1f | %.2f | %.3f (%d) | %.2f / %.2f | %.0f | %.0f |\n",
			p.Pods, p.Services, p.NEGs, step, p.RSSMiB, p.HWMMiB, p.HeapInuseMiB, p.CPUPer1kChanges, p.SyncP99, p.Syncs,
			p.RSSPerObjKiB, p.HeapPerObjKiB, p.StackMiB, p.MemAvailableMiB)
	}
	res.Tables = append(res.Tables, t.String())
	for _, p := range pts[1:] {
		for _, pc := range p.Procs {
			pc.Name += fmt.Sprintf(" (step to %d pods)", p.Pods)
			res.Procs = append(res.Procs, pc)
		}
		res.add(fmt.Sprintf("%d pods (%d Services, %d NEGs)", p.Pods, p.Services, p.NEGs),
			"step %.1f s%s; RSS %.1f MiB (HWM %.1f, heap %.1f); %.2f CPU s per 1,000 endpoint changes; sync p99 %.3f s over %d syncs; ≈ %.2f KiB RSS (%.2f KiB heap) per object added (estimate)",
			p.StepSeconds, map[bool]string{true: "", false: " (capped, not exact)"}[p.Converged], p.RSSMiB, p.HWMMiB, p.HeapInuseMiB,
			p.CPUPer1kChanges, p.SyncP99, p.Syncs, p.RSSPerObjKiB, p.HeapPerObjKiB)
	}
	res.add("scale curve end", "%s", stop)
	res.note("Per-object memory is an estimate: the controller's RSS (and Go heap in use) growth over a step divided by the "+
		"pods + EndpointSlices + Services the step added; it also carries what else grew with the step (NEG endpoint sets, "+
		"svcneg objects, queue keys) and GC timing, so single steps are noisy. Curve: %s.", stop)

	last := pts[len(pts)-1]
	if !last.Converged && len(pts) > 2 {
		last = pts[len(pts)-2]
	}
	var at *curvePoint
	for i := range pts {
		if pts[i].Pods == curveRSSTargetPods && pts[i].Converged {
			at = &pts[i]
		}
	}
	if at != nil {
		res.Targets = append(res.Targets, upper(fmt.Sprintf("controller RSS (VmHWM) at %d pods", at.Pods), at.HWMMiB, 150, "MiB"))
	} else {
		tg := upper(fmt.Sprintf("controller RSS (VmHWM) at %d pods (target is for 10,000 pods)", last.Pods), last.HWMMiB, 150, "MiB")
		tg.Met, tg.Miss = nil, ""
		res.Targets = append(res.Targets, tg)
	}
	// Linear growth: the marginal RSS per pod of the last step may not exceed 1.2 × that of the
	// second step (the first step from the idle controller carries the start-up warm-up).
	name := "RSS growth no faster than linear: marginal VmRSS per pod of the last step ≤ 1.2 × of the second step"
	var measured []curvePoint // converged points only: a capped step's pod count is not its point's
	for _, p := range pts[1:] {
		if p.Converged {
			measured = append(measured, p)
		}
	}
	if len(measured) < 3 {
		res.Targets = append(res.Targets, target{Name: name, Target: "≤ 1.2×",
			Actual: fmt.Sprintf("n/a: %d points measured, 3 needed", len(measured))})
		return
	}
	second := marginalMiBPerPod(measured[0], measured[1])
	lastM := marginalMiBPerPod(measured[len(measured)-2], measured[len(measured)-1])
	tg := target{Name: name, Target: "≤ 1.2×"}
	lbl := fmt.Sprintf("%d→%d pods %.2f KiB/pod vs %d→%d pods %.2f KiB/pod", measured[len(measured)-2].Pods, last.Pods, lastM*1024,
		measured[0].Pods, measured[1].Pods, second*1024)
	if second <= 0 {
		tg.Actual = lbl + " (RSS did not grow in the second step: not evaluated)"
	} else {
		r := lastM / second
		met := r <= 1.2
		tg.Actual, tg.Met = fmt.Sprintf("%.2f× (%s)", r, lbl), &met
		if !met {
			tg.Miss = fmt.Sprintf("%.2f×", r-1.2)
		}
	}
	res.Targets = append(res.Targets, tg)
}
