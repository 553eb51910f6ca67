package fakegce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// InjectFault adds a fault (see Fault). Faults are checked in the order they were added.
// It panics on a fault that does nothing or is malformed.
func (s *Server) InjectFault(f Fault) {
	if err := f.validate(); err != nil {
		panic("fakegce: " + err.Error())
	}
	s.faults.add(f)
}

// ClearFaults removes every fault. Operations already made never-finishing stay RUNNING.
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults returns the active faults; Count is what remains of a count-limited fault.
func (s *Server) Faults() []Fault { return s.faults.list() }

// Counts returns the number of requests per method id (discovery ids such as
// compute.networkEndpointGroups.attachNetworkEndpoints; "metadata" for the metadata server;
// "fakegce.unknownPath" for paths that matched nothing).
func (s *Server) Counts() map[string]int { return s.obs.snapshotCounts() }

// ResetCounts zeroes the counters.
func (s *Server) ResetCounts() { s.obs.reset(true, false) }

// Requests returns the request log, oldest first (at most Config.RequestLogSize entries).
func (s *Server) Requests() []RequestRecord { return s.obs.records() }

// ResetRequests empties the request log.
func (s *Server) ResetRequests() { s.obs.reset(false, true) }

// StateDump is the whole emulated state, as GET /admin/state answers it.
type StateDump struct {
	Project          string                    `json:"project"`
	NumericProjectID int64                     `json:"numericProjectId"`
	Region           string                    `json:"region"`
	Zones            []string                  `json:"zones"`
	Networks         []*compute.Network        `json:"networks"`
	Subnetworks      []*compute.Subnetwork     `json:"subnetworks"`
	Instances        []*compute.Instance       `json:"instances"`
	NEGs             []NEGDump                 `json:"networkEndpointGroups"`
	BackendServices  []*compute.BackendService `json:"backendServices"`
	HealthChecks     []*compute.HealthCheck    `json:"healthChecks"`
	Operations       OperationsDump            `json:"operations"`
	Frontends        []FrontendStats           `json:"frontends,omitempty"`
	Quota            *QuotaUsage               `json:"quota,omitempty"` // nil when quotas are off
}

// NEGDump is one NEG with its endpoints.
type NEGDump struct {
	NEG       *compute.NetworkEndpointGroup `json:"neg"`
	Endpoints []EndpointDump                `json:"endpoints"`
}

// EndpointDump is one endpoint of a NEG, with the health state it has forced on it, if any.
type EndpointDump struct {
	Instance     string `json:"instance,omitempty"`
	IPAddress    string `json:"ipAddress"`
	IPv6Address  string `json:"ipv6Address,omitempty"`
	Port         int64  `json:"port,omitempty"`
	ForcedHealth string `json:"forcedHealth,omitempty"`
}

// OperationsDump counts the remembered operations.
type OperationsDump struct {
	Total   int `json:"total"`
	Running int `json:"running"`
}

// State returns a snapshot of the whole state, sorted by scope and name.
func (s *Server) State() StateDump {
	d := StateDump{Project: s.cfg.Project, NumericProjectID: s.cfg.NumericProjectID, Region: s.cfg.Region, Zones: s.cfg.Zones}
	if q := s.Quota(); q.Enabled {
		d.Quota = &q
	}
	var negKeys []negKey
	s.mu.Lock() // write lock: NEG indexes may be rebuilt
	for _, n := range sortedValues(s.st.networks, func(n *compute.Network) string { return n.Name }) {
		cp := *n
		d.Networks = append(d.Networks, &cp)
	}
	d.Subnetworks = sortedValues(s.st.subnets, func(n *compute.Subnetwork) string { return n.Region + "/" + n.Name })
	for _, in := range sortedValues(s.st.instances, func(i *instance) string { return i.obj.SelfLink }) {
		d.Instances = append(d.Instances, in.obj)
	}
	for k := range s.st.negs {
		negKeys = append(negKeys, k)
	}
	slices.SortFunc(negKeys, func(a, b negKey) int { return strings.Compare(a.zone+"/"+a.name, b.zone+"/"+b.name) })
	for _, k := range negKeys {
		n := s.st.negs[k]
		n.idx.rebuild(n.eps)
		nd := NEGDump{NEG: n.render(), Endpoints: make([]EndpointDump, 0, len(n.idx.sorted))}
		for _, e := range n.idx.sorted {
			nd.Endpoints = append(nd.Endpoints, EndpointDump{Instance: e.Instance, IPAddress: e.IP, IPv6Address: e.IPv6, Port: e.Port,
				ForcedHealth: n.overrides[e]})
		}
		d.NEGs = append(d.NEGs, nd)
	}
	for _, b := range sortedValues(s.st.backends, func(b *backendService) string { return b.obj.SelfLink }) {
		d.BackendServices = append(d.BackendServices, b.obj)
	}
	for _, h := range sortedValues(s.st.hcs, func(h *healthCheck) string { return h.obj.SelfLink }) {
		d.HealthChecks = append(d.HealthChecks, h.obj)
	}
	s.mu.Unlock()
	s.ops.mu.Lock()
	d.Operations.Total = len(s.ops.keys)
	for _, o := range s.ops.keys {
		if o.op.Status != "DONE" {
			d.Operations.Running++
		}
	}
	s.ops.mu.Unlock()
	d.Frontends = s.Frontends()
	return d
}

// adminInstance is the body of POST /admin/instances.
type adminInstance struct {
	Zone string `json:"zone"`
	InstanceSpec
}

// adminHealth is the body of POST /admin/health (ipv6Address names a dual-stack or IPv6-only
// endpoint).
type adminHealth struct {
	Zone        string `json:"zone"`
	NEG         string `json:"neg"`
	Instance    string `json:"instance"`
	IPAddress   string `json:"ipAddress"`
	IPv6Address string `json:"ipv6Address,omitempty"`
	Port        int64  `json:"port"`
	State       string `json:"state"`
}

// adminFrontend is the body and answer of POST /admin/frontends.
type adminFrontend struct {
	BackendService string `json:"backendService"`
	Region         string `json:"region,omitempty"`
	Listen         string `json:"listen,omitempty"`
	Address        string `json:"address,omitempty"` // answer only
}

// serveAdmin serves the admin API; see the package documentation for the routes.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/")
	var v any
	var err error
	switch route {
	case "GET /admin/healthz":
		v = map[string]string{"status": "ok"}
	case "GET /admin/state":
		v = s.State()
	case "GET /admin/quota":
		v = s.Quota()
	case "POST /admin/quota":
		var q QuotaConfig
		if err = decodeAdmin(r, &q); err == nil {
			if err = s.SetQuota(&q); err == nil {
				v = s.Quota()
			}
		}
	case "DELETE /admin/quota":
		_ = s.SetQuota(nil)
		v = s.Quota()
	case "GET /admin/counts":
		v = s.Counts()
	case "DELETE /admin/counts":
		s.ResetCounts()
		v = map[string]string{}
	case "GET /admin/requests":
		v = s.Requests()
	case "DELETE /admin/requests":
		s.ResetRequests()
		v = map[string]string{}
	case "GET /admin/faults":
		v = s.Faults()
	case "POST /admin/faults":
		var f Fault
		if err = decodeAdmin(r, &f); err == nil {
			if err = f.validate(); err == nil {
				s.faults.add(f)
				v = f
			}
		}
	case "DELETE /admin/faults":
		s.ClearFaults()
		v = map[string]string{}
	case "POST /admin/instances":
		var in adminInstance
		if err = decodeAdmin(r, &in); err == nil {
			if err = s.AddInstance(in.Zone, in.InstanceSpec); err == nil {
				v = in
			}
		}
	case "POST /admin/health":
		var h adminHealth
		if err = decodeAdmin(r, &h); err == nil {
			ep := neg.Endpoint{Instance: h.Instance, IP: h.IPAddress, IPv6: h.IPv6Address, Port: h.Port}
			if err = s.ForceEndpointHealth(h.Zone, h.NEG, ep, h.State); err == nil {
				v = h
			}
		}
	case "GET /admin/backendHealth":
		v, err = s.BackendHealth(r.URL.Query().Get("region"), r.URL.Query().Get("name"))
	case "GET /admin/frontends":
		v = s.Frontends()
	case "POST /admin/frontends":
		var fe adminFrontend
		if err = decodeAdmin(r, &fe); err == nil {
			if fe.Address, err = s.AddFrontend(fe.Region, fe.BackendService, fe.Listen); err == nil {
				v = fe
			}
		}
	case "DELETE /admin/frontends":
		fe := adminFrontend{Address: r.URL.Query().Get("address")}
		if fe.Address == "" {
			err = decodeAdmin(r, &fe)
		}
		if err == nil {
			if err = s.RemoveFrontend(fe.Address); err == nil {
				v = map[string]string{"address": fe.Address}
			}
		}
	default:
		writeAdminError(w, http.StatusNotFound, fmt.Errorf("fakegce: no admin route %s (see GET /admin/healthz, /admin/state, /admin/counts, /admin/requests, /admin/faults, /admin/quota, /admin/backendHealth, /admin/frontends; POST /admin/faults, /admin/quota, /admin/instances, /admin/health, /admin/frontends)", route))
		return
	}
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, v)
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("fakegce: bad admin request body: %w", err)
	}
	return nil
}

func writeAdminError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
