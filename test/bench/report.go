package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// target is one goal from the issue, measured (never asserted).
type target struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Actual string `json:"actual"`
	// Met is nil when the target could not be evaluated (e.g. not applicable at this scale).
	Met  *bool  `json:"met"`
	Miss string `json:"miss,omitempty"` // by how much, when missed
}

func (t target) verdict() string {
	switch {
	case t.Met == nil:
		return "n/a"
	case *t.Met:
		return "met"
	default:
		return "**missed** by " + t.Miss
	}
}

// upper evaluates "actual ≤ limit" for a quantity in unit.
func upper(name string, actual, limit float64, unit string) target {
	met := actual <= limit
	t := target{Name: name, Target: fmt.Sprintf("≤ %s %s", num(limit), unit), Actual: fmt.Sprintf("%s %s", num(actual), unit), Met: &met}
	if !met {
		t.Miss = fmt.Sprintf("%s %s (%.1f×)", num(actual-limit), unit, actual/limit)
		if limit == 0 {
			t.Miss = fmt.Sprintf("%s %s", num(actual-limit), unit)
		}
	}
	return t
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// row is one line of the summary table.
type row struct {
	Metric string `json:"metric"`
	Value  string `json:"value"`
}

// Result is everything one scenario reports.
type Result struct {
	Name        string              `json:"name"`
	Error       string              `json:"error,omitempty"`
	Seconds     float64             `json:"wallSeconds"`
	Workload    string              `json:"workload"`
	Controller  string              `json:"controllerCommandLine"`
	Rows        []row               `json:"summary"`
	Targets     []target            `json:"targets"`
	Calls       map[string]gceCalls `json:"gceCalls"` // by phase
	Procs       []ProcCost          `json:"processes"`
	Latency     *Latencies          `json:"latency,omitempty"`
	Details     any                 `json:"details,omitempty"`
	Notes       []string            `json:"notes,omitempty"`
	LogExcerpts []string            `json:"logExcerpts,omitempty"`
	Tables      []string            `json:"tables,omitempty"` // Markdown, shown with the details
}

func (r *Result) add(metric, format string, args ...any) {
	r.Rows = append(r.Rows, row{metric, fmt.Sprintf(format, args...)})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// machine describes where the bench ran.
type machine struct {
	NProc      int    `json:"nproc"`
	CPUModel   string `json:"cpuModel"`
	MemTotal   string `json:"memTotal"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"goVersion"`
	Commit     string `json:"commit"`
	LoadStart  string `json:"loadAvgStart"`
	LoadEnd    string `json:"loadAvgEnd"`
	OtherProcs string `json:"busiestOtherProcessesAtStart,omitempty"`
}

// Report is what Run writes: the machine, the scale and every scenario's Result.
type Report struct {
	start     time.Time
	Date      string    `json:"date"`
	Scale     Scale     `json:"scale"`
	Machine   machine   `json:"machine"`
	Seconds   float64   `json:"wallSeconds"`
	Scenarios []*Result `json:"scenarios"`
}

func newReport(sc Scale) *Report {
	r := &Report{start: time.Now(), Scale: sc}
	r.Date = r.start.UTC().Format(time.RFC3339)
	m := &r.Machine
	m.NProc = runtime.NumCPU()
	m.GoVersion = runtime.Version()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && k == "MemTotal" {
				var kb int64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	m.Kernel = cmdOut("uname", "-r")
	m.Commit = cmdOut("git", "rev-parse", "--short", "HEAD")
	if s := cmdOut("git", "status", "--porcelain", "--untracked-files=no"); s != "" {
		m.Commit += " (+ uncommitted changes in the tree)"
	}
	m.LoadStart = loadAvg()
	m.OtherProcs = cmdOut("sh", "-c", "ps -eo pcpu,comm --sort=-pcpu --no-headers | head -5 | tr -s ' ' | paste -sd ';' -")
	return r
}

func cmdOut(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (r *Report) add(s *Result) { r.Scenarios = append(r.Scenarios, s) }

func (r *Report) finish() {
	r.Seconds = round(time.Since(r.start).Seconds(), 1)
	r.Machine.LoadEnd = loadAvg()
}

// HarnessFailed reports whether a scenario failed (as opposed to missing a target).
func (r *Report) HarnessFailed() bool {
	for _, s := range r.Scenarios {
		if s.Error != "" {
			return true
		}
	}
	return false
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
