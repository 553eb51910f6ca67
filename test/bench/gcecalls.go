package bench

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// Discovery ids of the calls the bench looks at.
const (
	mAttach = "compute.networkEndpointGroups.attachNetworkEndpoints"
	mDetach = "compute.networkEndpointGroups.detachNetworkEndpoints"
	mInsert = "compute.networkEndpointGroups.insert"
	mList   = "compute.networkEndpointGroups.listNetworkEndpoints"
)

// isRead tells read-only Compute methods from mutating ones (which start an operation).
func isRead(method string) bool {
	for _, suffix := range []string{".get", ".list", ".aggregatedList", ".listNetworkEndpoints", ".getHealth", ".wait"} {
		if strings.HasSuffix(method, suffix) {
			return true
		}
	}
	return method == "metadata"
}

// gceCalls is what the controller asked of fakegce during a window.
type gceCalls struct {
	ByMethod map[string]int `json:"byMethod"`
	Mutating int            `json:"mutating"`
	Reads    int            `json:"reads"`
	// ByStatus counts responses by HTTP status (from the request log).
	ByStatus map[int]int `json:"byStatus,omitempty"`
	// FailedMutations counts mutating calls answered with a non-200 status.
	FailedMutations int `json:"failedMutations"`
	// InFlight counts requests still unanswered when the window closed.
	InFlight int `json:"inFlight,omitempty"`
	// Quota is fakegce's rate quota per group over the window (nil when the quota was off).
	Quota []fakegce.QuotaGroupUsage `json:"quota,omitempty"`
}

// callWindow starts counting GCE calls.
func (e *env) callWindow() time.Time {
	e.st.GCE.ResetQuotaTotals()
	e.st.GCE.ResetCounts()
	e.st.GCE.ResetRequests()
	return time.Now()
}

// calls returns the calls since the last callWindow.
func (e *env) calls() gceCalls {
	c := gceCalls{ByMethod: map[string]int{}, ByStatus: map[int]int{}, Quota: e.st.GCE.Quota().Groups}
	for m, n := range e.st.GCE.Counts() {
		short := strings.TrimPrefix(m, "compute.")
		c.ByMethod[short] = n
		if isRead(m) {
			c.Reads += n
		} else {
			c.Mutating += n
		}
	}
	for _, r := range e.st.GCE.Requests() {
		if r.Status == 0 {
			c.InFlight++
			continue
		}
		c.ByStatus[r.Status]++
		if !isRead(r.Method) && r.Status != 200 {
			c.FailedMutations++
		}
	}
	return c
}

// minCalls is the least number of attach (or detach) calls that can move n endpoints per zone:
// ceil(n/500) per NEG.
func minCalls(perZone map[string]int) int {
	t := 0
	for _, n := range perZone {
		t += int(math.Ceil(float64(n) / 500))
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
