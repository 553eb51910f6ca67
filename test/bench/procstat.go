package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}()

// procSample is one reading of a process.
type procSample struct {
	rssKiB, hwmKiB int64
	cpuSec         float64 // utime + stime
}

// readProc reads VmRSS and VmHWM from /proc/<pid>/status and utime+stime from /proc/<pid>/stat.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKiB = n
		case "VmHWM":
			s.hwmKiB = n
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may contain spaces; fields after the last ')' start at field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("unparsable /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14
	st, _ := strconv.ParseFloat(f[12], 64) // field 15
	s.cpuSec = (ut + st) / clockTicks
	return s, nil
}

// ProcCost is what one process cost during a measurement window.
type ProcCost struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// CPUSeconds is utime+stime spent inside the window.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakRSSMiB is the largest VmRSS sampled inside the window.
	PeakRSSMiB float64 `json:"peakRssMiB"`
	// HWMMiB is VmHWM (peak RSS over the process's whole life) at the end of the window.
	HWMMiB float64 `json:"vmHwmMiB"`
}

type procTrack struct {
	pid      int
	last     procSample
	startCPU float64
	peakRSS  int64
}

// sampler samples named processes every interval. Windows measure CPU deltas and sampled peaks;
// a process may be replaced (controller restart) only between windows.
type sampler struct {
	mu    sync.Mutex
	procs map[string]*procTrack
	order []string
	stop  chan struct{}
	done  chan struct{}
}

func newSampler(interval time.Duration) *sampler {
	s := &sampler{procs: map[string]*procTrack{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sampleAll()
			}
		}
	}()
	return s
}

// track starts (or restarts, for a new pid) following a process under name.
func (s *sampler) track(name string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.procs[name]; !ok {
		s.order = append(s.order, name)
	}
	t := &procTrack{pid: pid}
	if smp, err := readProc(pid); err == nil {
		t.last, t.startCPU, t.peakRSS = smp, smp.cpuSec, smp.rssKiB
	}
	s.procs[name] = t
}

func (s *sampler) sampleAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.procs {
		s.sampleLocked(t)
	}
}

func (s *sampler) sampleLocked(t *procTrack) {
	smp, err := readProc(t.pid)
	if err != nil {
		return // exited: keep the last reading
	}
	t.last = smp
	t.peakRSS = max(t.peakRSS, smp.rssKiB)
}

// begin starts a window: CPU is counted from now, peaks are reset.
func (s *sampler) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.procs {
		s.sampleLocked(t)
		t.startCPU = t.last.cpuSec
		t.peakRSS = t.last.rssKiB
	}
}

// end closes the window and returns each process's cost, in tracking order.
func (s *sampler) end() []ProcCost {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ProcCost
	for _, name := range s.order {
		t := s.procs[name]
		s.sampleLocked(t)
		out = append(out, ProcCost{
			Name: name, PID: t.pid,
			CPUSeconds: round(t.last.cpuSec-t.startCPU, 2),
			PeakRSSMiB: round(float64(t.peakRSS)/1024, 1),
			HWMMiB:     round(float64(t.last.hwmKiB)/1024, 1),
		})
	}
	return out
}

func (s *sampler) close() {
	close(s.stop)
	<-s.done
}

// pids returns the tracked processes' current pids.
func (s *sampler) pids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.procs))
	for _, t := range s.procs {
		out = append(out, t.pid)
	}
	return out
}
