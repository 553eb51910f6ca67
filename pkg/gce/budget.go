package gce

import (
	"maps"
	"slices"
)

// Budgets: GCE enforces rate quotas per project and quota group, in fixed one-minute windows,
// shared by every client of the project (gce-api.md §6). The adapter spends each of those
// groups from one adaptive token bucket, whatever method draws on it, so that no method's
// budget idles while another's calls queue.
const (
	// BudgetMutations is GCE's "Queries" group (compute.googleapis.com/default): every
	// mutating method.
	BudgetMutations = "mutations"
	// BudgetReads is the read requests group: *.get.
	BudgetReads = "reads"
	// BudgetLists is the list requests group: *.list, *.aggregatedList.
	BudgetLists = "lists"
	// BudgetOperationReads is the operation read requests group: *Operations.get.
	BudgetOperationReads = "operationReads"
)

// DefaultBudgets are the calls per minute of each budget absent from Config.Budgets: GCE's
// documented default quota of each group, 1,500 requests per minute per project. A project
// shared with other clients (other clusters, Terraform, people) should give the controller less;
// a project whose quota was raised may give it more.
var DefaultBudgets = map[string]int{
	BudgetMutations:      1500,
	BudgetReads:          1500,
	BudgetLists:          1500,
	BudgetOperationReads: 1500,
}

// BudgetRate turns a budget of perMinute calls per minute into its token bucket. The burst is
// one second's worth of calls (perMinute/60, at least 1) and the bucket refills at
// (perMinute − burst)/60 per second, so that no one-minute window, wherever it starts, sees
// more than perMinute calls from this process: GCE counts in fixed windows and answers
// rateLimitExceeded past the quota, and a bucket refilling at perMinute/60 with any burst would
// overshoot by that burst. A second's worth lets a quiet controller start the calls of a
// Service (its NEGs in every zone, for several ports) at once. 0 disables the budget (+Inf).
func BudgetRate(perMinute int) RateLimit {
	if perMinute <= 0 {
		return RateLimit{}
	}
	burst := max(1, perMinute/60)
	qps := float64(perMinute-burst) / 60
	if qps <= 0 { // a budget of a call or so per minute
		qps = float64(perMinute) / 60
	}
	return RateLimit{QPS: qps, Burst: burst}
}

// Method groups: the names under which Config.RateLimits (--gce-rate-limit) caps methods.
const (
	GroupZones                = "zones"
	GroupGetNEG               = "getNEG"
	GroupInsertNEG            = "insertNEG"
	GroupDeleteNEG            = "deleteNEG"
	GroupListNEGs             = "listNEGs"
	GroupListEndpoints        = "listEndpoints"
	GroupAttach               = "attach"
	GroupDetach               = "detach"
	GroupOperations           = "operations"
	GroupWait                 = "wait"
	GroupGetBackendService    = "getBackendService"
	GroupUpdateBackendService = "updateBackendService"
)

// MethodGroup is one row of MethodGroups.
type MethodGroup struct {
	// Name is the group's name (--gce-rate-limit, metrics).
	Name string
	// Methods are the API methods charged to the group.
	Methods string
	// Budget is the budget every call of the group draws from.
	Budget string
	// Unverified marks groups whose GCE quota group the documentation does not state; the
	// budget is our best reading.
	Unverified bool
}

// MethodGroups is the one table of which budget each GCE method the adapter calls is charged
// to. Every call takes one token of its budget (each page of a list, each attempt of a retry,
// each operation wait), plus one of its group's cap if Config.RateLimits sets one.
var MethodGroups = []MethodGroup{
	{Name: GroupInsertNEG, Methods: "networkEndpointGroups.insert", Budget: BudgetMutations},
	{Name: GroupDeleteNEG, Methods: "networkEndpointGroups.delete", Budget: BudgetMutations},
	{Name: GroupAttach, Methods: "networkEndpointGroups.attachNetworkEndpoints", Budget: BudgetMutations},
	{Name: GroupDetach, Methods: "networkEndpointGroups.detachNetworkEndpoints", Budget: BudgetMutations},
	{Name: GroupUpdateBackendService, Methods: "{region,}backendServices.patch", Budget: BudgetMutations},
	{Name: GroupGetNEG, Methods: "networkEndpointGroups.get", Budget: BudgetReads},
	{Name: GroupGetBackendService, Methods: "{region,}backendServices.get", Budget: BudgetReads},
	{Name: GroupZones, Methods: "zones.list", Budget: BudgetLists},
	{Name: GroupListNEGs, Methods: "networkEndpointGroups.aggregatedList (per page)", Budget: BudgetLists},
	// A POST that reads: GCE's docs do not say whether it counts as a list, a read or a query.
	{Name: GroupListEndpoints, Methods: "networkEndpointGroups.listNetworkEndpoints (per page)", Budget: BudgetLists, Unverified: true},
	{Name: GroupOperations, Methods: "{zone,region,global}Operations.get (not called: waits replace polls)", Budget: BudgetOperationReads},
	// A long poll on an operation: documented neither as an operation read nor otherwise.
	{Name: GroupWait, Methods: "{zone,region,global}Operations.wait (long poll)", Budget: BudgetOperationReads, Unverified: true},
}

// methodGroup returns the row of name.
func methodGroup(name string) (MethodGroup, bool) {
	i := slices.IndexFunc(MethodGroups, func(g MethodGroup) bool { return g.Name == name })
	if i < 0 {
		return MethodGroup{}, false
	}
	return MethodGroups[i], true
}

// GroupNames returns the names of the method groups, sorted.
func GroupNames() []string {
	out := make([]string, 0, len(MethodGroups))
	for _, g := range MethodGroups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

// BudgetNames returns the names of the budgets, sorted.
func BudgetNames() []string {
	return slices.Sorted(maps.Keys(DefaultBudgets))
}
