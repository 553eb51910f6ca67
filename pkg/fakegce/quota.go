package fakegce

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate quota groups, named by their metric (compute.googleapis.com/<group>), as Compute Engine's
// "rate quotas" page lists them. Each group is counted on its own, per project, in fixed
// one-minute windows.
const (
	// QuotaDefault is "Queries" (compute.googleapis.com/default): the mutating methods.
	QuotaDefault = "default"
	// QuotaReadRequests is "Read requests" (compute.googleapis.com/read_requests): *.get.
	QuotaReadRequests = "read_requests"
	// QuotaListRequests is "List requests" (compute.googleapis.com/list_requests): *.list.
	QuotaListRequests = "list_requests"
	// QuotaOperationReadRequests is "Operation read requests"
	// (compute.googleapis.com/operation_read_requests): operations get.
	QuotaOperationReadRequests = "operation_read_requests"
)

// DefaultQuotaPerMinute is GCE's documented default limit of each group: 1,500 requests per
// minute per project.
const DefaultQuotaPerMinute = 1500

// QuotaConfig turns on rate quota enforcement (Config.Quota; nil = off). Requests are counted
// per group (QuotaGroupOf) in fixed windows aligned to the minute of Now: requests at
// 10:00:00–10:00:59.999 share one window, which refills at 10:01:00. A request over its
// group's limit is answered 403 rateLimitExceeded and not applied.
type QuotaConfig struct {
	// Limits are requests per minute by group (QuotaDefault, ...); a group not named gets
	// DefaultQuotaPerMinute. Values must be at least 1.
	Limits map[string]int `json:"limits,omitempty"`
	// Now is the clock that places requests in windows; default time.Now.
	Now func() time.Time `json:"-"`
}

// quotaGroupInfo is how GCE names a group in its quota pages and error messages.
type quotaGroupInfo struct {
	display string // quota group / metric display name ("Queries")
	limitID string // limit name in the docs (defaultPerMinutePerProject)
}

var quotaGroups = map[string]quotaGroupInfo{
	QuotaDefault:               {"Queries", "defaultPerMinutePerProject"},
	QuotaReadRequests:          {"Read requests", "ReadRequestsPerMinutePerProject"},
	QuotaListRequests:          {"List requests", "ListRequestsPerMinutePerProject"},
	QuotaOperationReadRequests: {"Operation read requests", "OperationReadRequestsPerMinutePerProject"},
}

// QuotaGroupNames lists the groups in a fixed order.
func QuotaGroupNames() []string {
	return []string{QuotaDefault, QuotaReadRequests, QuotaListRequests, QuotaOperationReadRequests}
}

// limits validates q and returns the effective limit of every group.
func (q *QuotaConfig) limits() (map[string]int, error) {
	out := map[string]int{}
	for _, g := range QuotaGroupNames() {
		out[g] = DefaultQuotaPerMinute
	}
	for g, n := range q.Limits {
		if _, ok := quotaGroups[g]; !ok {
			return nil, fmt.Errorf("quota group %q: want one of %s", g, strings.Join(QuotaGroupNames(), ", "))
		}
		if n < 1 {
			return nil, fmt.Errorf("quota group %q: limit %d per minute must be at least 1", g, n)
		}
		out[g] = n
	}
	return out, nil
}

// ParseQuotaLimits parses "group=N,group=N" (the --quota-limits flag) into limits per minute.
func ParseQuotaLimits(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		g, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil {
			return nil, fmt.Errorf("quota limit %q: want group=requestsPerMinute", kv)
		}
		out[strings.TrimSpace(g)] = n
	}
	_, err := (&QuotaConfig{Limits: out}).limits()
	return out, err
}

// methodQuota is the quota group of every method the emulator serves. Every route must have an
// entry (TestQuotaGroupEveryRoute). The documented rule: mutating methods count in "Queries"
// (default), *.get in read requests, *.list in list requests, operations get in operation read
// requests. Entries the documentation does not settle are marked [unverified against real GCE]
// with the reading chosen.
var methodQuota = map[string]string{
	// Zonal NEGs.
	"compute.networkEndpointGroups.insert":                 QuotaDefault,
	"compute.networkEndpointGroups.delete":                 QuotaDefault,
	"compute.networkEndpointGroups.attachNetworkEndpoints": QuotaDefault,
	"compute.networkEndpointGroups.detachNetworkEndpoints": QuotaDefault,
	"compute.networkEndpointGroups.get":                    QuotaReadRequests,
	"compute.networkEndpointGroups.list":                   QuotaListRequests,
	// [unverified against real GCE] aggregatedList is not *.list by name; the docs mention it
	// only for the filtered-list overhead, next to *.list. Counted as a list request.
	"compute.networkEndpointGroups.aggregatedList": QuotaListRequests,
	// [unverified against real GCE] listNetworkEndpoints is a POST that only reads and is
	// neither *.get nor *.list; the older wording ("Queries: all methods except *.get and
	// *.list") would put it in default. Counted as a list request, like the list it is.
	"compute.networkEndpointGroups.listNetworkEndpoints": QuotaListRequests,

	// Backend services, global and regional.
	"compute.backendServices.insert":       QuotaDefault,
	"compute.backendServices.update":       QuotaDefault,
	"compute.backendServices.patch":        QuotaDefault,
	"compute.backendServices.delete":       QuotaDefault,
	"compute.backendServices.get":          QuotaReadRequests,
	"compute.backendServices.list":         QuotaListRequests,
	"compute.regionBackendServices.insert": QuotaDefault,
	"compute.regionBackendServices.update": QuotaDefault,
	"compute.regionBackendServices.patch":  QuotaDefault,
	"compute.regionBackendServices.delete": QuotaDefault,
	"compute.regionBackendServices.get":    QuotaReadRequests,
	"compute.regionBackendServices.list":   QuotaListRequests,
	// [unverified against real GCE] getHealth is a read-only POST, not *.get; counted as a
	// read request (by the older wording it would be default).
	"compute.backendServices.getHealth":       QuotaReadRequests,
	"compute.regionBackendServices.getHealth": QuotaReadRequests,

	// Health checks, global and regional.
	"compute.healthChecks.insert":       QuotaDefault,
	"compute.healthChecks.update":       QuotaDefault,
	"compute.healthChecks.patch":        QuotaDefault,
	"compute.healthChecks.delete":       QuotaDefault,
	"compute.healthChecks.get":          QuotaReadRequests,
	"compute.healthChecks.list":         QuotaListRequests,
	"compute.regionHealthChecks.insert": QuotaDefault,
	"compute.regionHealthChecks.update": QuotaDefault,
	"compute.regionHealthChecks.patch":  QuotaDefault,
	"compute.regionHealthChecks.delete": QuotaDefault,
	"compute.regionHealthChecks.get":    QuotaReadRequests,
	"compute.regionHealthChecks.list":   QuotaListRequests,

	// Instances, zones, regions, networks.
	"compute.instances.insert":         QuotaDefault,
	"compute.instances.delete":         QuotaDefault,
	"compute.instances.get":            QuotaReadRequests,
	"compute.instances.list":           QuotaListRequests,
	"compute.instances.aggregatedList": QuotaListRequests, // [unverified against real GCE], as NEG aggregatedList
	"compute.zones.get":                QuotaReadRequests,
	"compute.zones.list":               QuotaListRequests,
	"compute.regions.get":              QuotaReadRequests,
	"compute.regions.list":             QuotaListRequests,
	"compute.networks.insert":          QuotaDefault,
	"compute.networks.get":             QuotaReadRequests,
	"compute.networks.list":            QuotaListRequests,
	"compute.subnetworks.insert":       QuotaDefault,
	"compute.subnetworks.get":          QuotaReadRequests,
	"compute.subnetworks.list":         QuotaListRequests,

	// Operations. The docs name globalOperations.get (older pages: "*OperationsService.Get");
	// zone and region get are counted alike [unverified against real GCE].
	"compute.globalOperations.get": QuotaOperationReadRequests,
	"compute.zoneOperations.get":   QuotaOperationReadRequests,
	"compute.regionOperations.get": QuotaOperationReadRequests,
	// [unverified against real GCE] wait is a POST that reads an operation; the docs do not
	// name it. Counted as an operation read (the older wording would put it in default).
	"compute.globalOperations.wait": QuotaOperationReadRequests,
	"compute.zoneOperations.wait":   QuotaOperationReadRequests,
	"compute.regionOperations.wait": QuotaOperationReadRequests,
}

// QuotaGroupOf returns the quota group method (a discovery id) counts in, and whether the
// emulator's table names it.
func QuotaGroupOf(method string) (string, bool) {
	g, ok := methodQuota[method]
	return g, ok
}

// QuotaTable returns the method → quota group table (a copy).
func QuotaTable() map[string]string { return maps.Clone(methodQuota) }

// Methods returns the discovery ids of every Compute method the server serves, sorted.
func (s *Server) Methods() []string {
	out := slices.Clone(s.methods)
	slices.Sort(out)
	return slices.Compact(out)
}

// QuotaUsage is the quota state, as GET /admin/quota (and /admin/state) answers it.
type QuotaUsage struct {
	Enabled bool `json:"enabled"`
	// WindowStart is the start of the current window (the minute of the clock).
	WindowStart time.Time         `json:"windowStart,omitzero"`
	Groups      []QuotaGroupUsage `json:"groups,omitempty"`
}

// QuotaGroupUsage is one group's counters. Used and Rejected are for the current window;
// the totals and the peak run since the quota was (re)configured.
type QuotaGroupUsage struct {
	Group          string `json:"group"`
	Metric         string `json:"metric"` // compute.googleapis.com/<group>
	LimitPerMinute int    `json:"limitPerMinute"`
	Used           int    `json:"used"`
	Rejected       int    `json:"rejected"`
	TotalAllowed   int    `json:"totalAllowed"`
	TotalRejected  int    `json:"totalRejected"`
	// PeakPerMinute is the most requests allowed in one window.
	PeakPerMinute int `json:"peakPerMinute"`
	// WindowsLimited counts the windows in which the group reached its limit and rejected.
	WindowsLimited int `json:"windowsLimited"`
}

// quota enforces QuotaConfig. Rejected requests are counted apart and do not use up the
// window: whether GCE charges them is [unverified against real GCE], and with fixed windows
// it changes nothing observable (once at the limit, the rest of the window is rejected).
type quota struct {
	mu      sync.Mutex
	on      bool
	now     func() time.Time
	limits  map[string]int
	window  time.Time
	groups  map[string]*QuotaGroupUsage
	project int64
}

func (q *quota) set(cfg *QuotaConfig) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cfg == nil {
		q.on, q.groups = false, nil
		return nil
	}
	lim, err := cfg.limits()
	if err != nil {
		return err
	}
	q.on, q.limits, q.now, q.window = true, lim, cfg.Now, time.Time{}
	if q.now == nil {
		q.now = time.Now
	}
	q.groups = map[string]*QuotaGroupUsage{}
	for g, n := range lim {
		q.groups[g] = &QuotaGroupUsage{Group: g, Metric: "compute.googleapis.com/" + g, LimitPerMinute: n}
	}
	return nil
}

// rollLocked moves to the window of now, refilling every group.
func (q *quota) rollLocked() {
	w := q.now().Truncate(time.Minute)
	if w.Equal(q.window) {
		return
	}
	q.window = w
	for _, u := range q.groups {
		if u.Rejected > 0 {
			u.WindowsLimited++
		}
		u.Used, u.Rejected = 0, 0
	}
}

// admit counts one request of method; over the limit it returns the 403 to answer.
func (q *quota) admit(method string) *apiError {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.on {
		return nil
	}
	q.rollLocked()
	g, ok := methodQuota[method]
	if !ok {
		g = QuotaDefault
	}
	u := q.groups[g]
	if u.Used >= u.LimitPerMinute {
		u.Rejected++
		u.TotalRejected++
		return q.errLocked(g, u.LimitPerMinute)
	}
	u.Used++
	u.TotalAllowed++
	u.PeakPerMinute = max(u.PeakPerMinute, u.Used)
	return nil
}

// errLocked is GCE's rate quota error: 403, errors[].reason rateLimitExceeded in domain
// usageLimits, and a google.rpc.ErrorInfo detail. The message follows Google's per-minute
// quota messages ("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'
// of service 'compute.googleapis.com' for consumer 'project_number:N'."); the limit's display
// name and the ErrorInfo metadata are [unverified against real GCE] for Compute.
func (q *quota) errLocked(group string, limit int) *apiError {
	info := quotaGroups[group]
	return &apiError{
		code:   http.StatusForbidden,
		reason: reasonRateLimit,
		domain: "usageLimits",
		message: fmt.Sprintf("Quota exceeded for quota metric '%s' and limit '%s per minute' of service "+
			"'compute.googleapis.com' for consumer 'project_number:%d'.", info.display, info.display, q.project),
		details: []any{map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "RATE_LIMIT_EXCEEDED",
			"domain": "googleapis.com",
			"metadata": map[string]string{
				"service":           "compute.googleapis.com",
				"consumer":          fmt.Sprintf("projects/%d", q.project),
				"quota_metric":      "compute.googleapis.com/" + group,
				"quota_limit":       info.limitID,
				"quota_limit_value": strconv.Itoa(limit),
				"quota_location":    "global",
				"quota_unit":        "1/min/{project}",
			},
		}},
	}
}

func (q *quota) usage() QuotaUsage {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.on {
		return QuotaUsage{}
	}
	q.rollLocked()
	out := QuotaUsage{Enabled: true, WindowStart: q.window}
	for _, u := range q.groups {
		out.Groups = append(out.Groups, *u)
	}
	sort.Slice(out.Groups, func(i, j int) bool {
		return slices.Index(QuotaGroupNames(), out.Groups[i].Group) < slices.Index(QuotaGroupNames(), out.Groups[j].Group)
	})
	return out
}

// ResetQuotaTotals zeros the totals, peaks and limited-window counts (e.g. at the start of a
// measurement); the current window's usage is kept, so the limit still holds in this minute.
func (s *Server) ResetQuotaTotals() {
	q := &s.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range q.groups {
		u.TotalAllowed, u.TotalRejected, u.PeakPerMinute, u.WindowsLimited = 0, 0, u.Used, 0
	}
}

// SetQuota turns quota enforcement on with cfg (counters start afresh) or, with nil, off.
func (s *Server) SetQuota(cfg *QuotaConfig) error { return s.quota.set(cfg) }

// Quota returns the quota state: limits and usage per group (Enabled false when off).
func (s *Server) Quota() QuotaUsage { return s.quota.usage() }
