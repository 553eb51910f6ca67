package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// Markdown renders the report as results.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("# neg-controller benchmark (`make bench`)\n\n")
	w("- Date: %s; scale **%s**; wall time %.0f s\n", r.Date, r.Scale.Name, r.Seconds)
	w("- Machine: %d CPUs (%s), %s RAM, Linux %s; %s; commit %s\n", m.NProc, m.CPUModel, m.MemTotal, m.Kernel, m.GoVersion, m.Commit)
	w("- Load average at start %s, at end %s. The machine is shared: other jobs ran during the bench, so CPU-bound numbers (latencies, convergence, CPU seconds) are noisy; compare runs, not single values.\n", m.LoadStart, m.LoadEnd)
	w("- Everything runs on this machine: etcd, kube-apiserver, kube-controller-manager (built from source), the bench process (fakegce emulator + pod simulator + measurement) and neg-controller. fakegce operation latency %s in every scenario but rollout (%s, as in its e2e test). fakegce enforces GCE's rate quota (fixed minute windows, 403 rateLimitExceeded) while the controller runs: the documented %d requests per minute per group, except %d in the raised-limits runs and, where the resync period is compressed (steady, rollout), the default scaled by the same factor.\n\n", operationLatency, rolloutOperationLatency(), fakegce.DefaultQuotaPerMinute, raisedQuotaPerMinute)

	w("## Targets\n\n| Scenario | Target | Measured | Verdict |\n|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		for _, t := range s.Targets {
			w("| %s | %s: %s | %s | %s |\n", s.Name, t.Name, t.Target, t.Actual, t.verdict())
		}
		if s.Error != "" {
			w("| %s | – | harness error | %s |\n", s.Name, oneLine(s.Error))
		}
	}

	w("\n## Results\n\n| Scenario | Metric | Value |\n|---|---|---|\n")
	for _, s := range r.Scenarios {
		for _, row := range s.Rows {
			w("| %s | %s | %s |\n", s.Name, row.Metric, row.Value)
		}
	}

	r.latencyTable(&b)
	r.costTable(&b)
	r.callsTable(&b)

	w("\n## Scenario details\n")
	for _, s := range r.Scenarios {
		w("\n### %s (%.0f s)\n\n", s.Name, s.Seconds)
		w("- Workload: %s\n", s.Workload)
		if s.Controller != "" {
			w("- Controller: `%s`\n", s.Controller)
		}
		for _, n := range s.Notes {
			w("- %s\n", n)
		}
		for _, t := range s.Tables {
			w("\n%s\n", t)
		}
		if s.Error != "" {
			w("- **Error:** %s\n", s.Error)
		}
		for _, ex := range s.LogExcerpts {
			w("\n```\n%s\n```\n", ex)
		}
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (r *Report) latencyTable(b *strings.Builder) {
	var rows []string
	lineC := func(scn, what string, p Percentiles, censored string) {
		if p.N == 0 {
			rows = append(rows, fmt.Sprintf("| %s | %s | 0 | – | – | – | – |", scn, what))
			return
		}
		n := fmt.Sprint(p.N)
		if p.Censored > 0 {
			n += fmt.Sprintf(" (%d %s)", p.Censored, censored)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", scn, what, n,
			p.fmtP("p50", p.P50), p.fmtP("p95", p.P95), p.fmtP("p99", p.P99), p.fmtP("max", p.Max)))
	}
	line := func(scn, what string, p Percentiles) { lineC(scn, what, p, "not yet in GCE") }
	for _, s := range r.Scenarios {
		l := s.Latency
		if l == nil {
			continue
		}
		if len(l.PerEndpoint) > 0 {
			for _, x := range l.PerEndpoint {
				line(s.Name, x.What, x.P)
			}
			continue
		}
		line(s.Name, "EndpointSlice change → endpoint attached/detached in GCE", l.SliceToGCE)
		line(s.Name, "… attach only", l.SliceToGCEAttach)
		line(s.Name, "… detach only", l.SliceToGCEDetach)
		if g := l.Gates; g != nil {
			lineC(s.Name, "readiness gate: endpoint attached in GCE → gate True (includes fakegce's HEALTHY delay)", g.FromGCE, "gate still False")
			lineC(s.Name, "readiness gate: gated pod created → gate True (end to end)", g.FromCreate, "gate still False")
		}
		line(s.Name, "pod label change → GCE (end to end, includes kube-controller-manager)", l.PodToGCE)
		line(s.Name, "pod label change → EndpointSlice seen (kube-controller-manager lag)", l.PodToSlice)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Per-endpoint latency (seconds)\n\n| Scenario | Latency | n | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|\n%s\n", strings.Join(rows, "\n"))
}

func (r *Report) costTable(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Process cost per scenario (measurement window)\n\n")
	fmt.Fprintf(b, "CPU = utime+stime inside the window (/proc/PID/stat); RSS peak = largest VmRSS sampled every 500 ms inside the window; VmHWM = the process's lifetime peak RSS at the window's end. cold-start and rollout each have their own stack and controller; big-service, churn and faults share the controller started in the shared set-up (so their VmHWM is cumulative); churn-raised and steady restart it. The control plane is never restarted within a stack.\n\n")
	fmt.Fprintf(b, "| Scenario | Process | CPU s | RSS peak MiB | VmHWM MiB |\n|---|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		for _, p := range s.Procs {
			name := p.Name
			if strings.HasPrefix(name, "neg-controller") {
				name = "**" + name + "**"
			}
			fmt.Fprintf(b, "| %s | %s | %.2f | %.1f | %.1f |\n", s.Name, name, p.CPUSeconds, p.PeakRSSMiB, p.HWMMiB)
		}
	}
}

func (r *Report) callsTable(b *strings.Builder) {
	fmt.Fprintf(b, "\n## GCE calls by method (fakegce counters, per measured phase)\n\n| Scenario | Phase | Mutating | Reads | By method | Non-200 responses | fakegce rate quota (peak per minute / limit, 403s) |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		phases := make([]string, 0, len(s.Calls))
		for p := range s.Calls {
			phases = append(phases, p)
		}
		sort.Strings(phases)
		for _, p := range phases {
			c := s.Calls[p]
			var parts []string
			for _, m := range sortedKeys(c.ByMethod) {
				parts = append(parts, fmt.Sprintf("%s %d", m, c.ByMethod[m]))
			}
			var bad []string
			for code, n := range c.ByStatus {
				if code != 200 {
					bad = append(bad, fmt.Sprintf("%d×%d", n, code))
				}
			}
			sort.Strings(bad)
			if c.InFlight > 0 {
				bad = append(bad, fmt.Sprintf("%d still in flight", c.InFlight))
			}
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %s |\n", s.Name, p, c.Mutating, c.Reads, strings.Join(parts, ", "), strings.Join(bad, ", "), quotaCell(c.Quota))
		}
	}
}

// quotaCell renders the quota groups of a phase: "default 1500/1500, 230×403; ..." or "off".
func quotaCell(q []fakegce.QuotaGroupUsage) string {
	if len(q) == 0 {
		return "off"
	}
	var parts []string
	for _, g := range q {
		if g.TotalAllowed == 0 && g.TotalRejected == 0 {
			continue
		}
		part := fmt.Sprintf("%s %d/%d", g.Group, g.PeakPerMinute, g.LimitPerMinute)
		if g.TotalRejected > 0 {
			part += fmt.Sprintf(", %d×403", g.TotalRejected)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
