package fakegce

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// maxBackends is GCE's limit of backends per backend service.
const maxBackends = 50

// backendService is a stored global (key.region "") or regional backend service. obj is never
// mutated once stored: every write stores a new object with a new fingerprint.
//
// The model keeps, besides the API object, the parsed references an emulated load balancer
// needs: the backend NEGs (groups, in backends order, with their balancing settings in obj) and
// the health check. A later frontend can list a service's endpoints with BackendHealth (or
// serviceEndpoints) and proxy to the HEALTHY ones, honouring obj.ConnectionDraining.
type backendService struct {
	key    scopeKey
	obj    *compute.BackendService
	groups []negKey
	hc     scopeKey // zero if the service has no health check
	// links records, per backend NEG, when it became a backend of this service while the
	// service had a health check: the start of the fixed-mode healthy delay.
	links map[negKey]time.Time
}

func (b *backendService) hasGroup(k negKey) bool { return slices.Contains(b.groups, k) }
func (b *backendService) hasHC() bool            { return b.hc.name != "" }

func newFingerprint() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func (s *Server) backendRoutes() {
	for _, sc := range []struct{ path, id string }{
		{"global/backendServices", "compute.backendServices."},
		{"regions/{region}/backendServices", "compute.regionBackendServices."},
	} {
		s.handle(http.MethodPost, sc.path, sc.id+"insert", s.insertBS)
		s.handle(http.MethodGet, sc.path, sc.id+"list", s.listBS)
		s.handle(http.MethodGet, sc.path+"/{bs}", sc.id+"get", s.getBS)
		s.handle(http.MethodPut, sc.path+"/{bs}", sc.id+"update", s.updateBS)
		s.handle(http.MethodPatch, sc.path+"/{bs}", sc.id+"patch", s.patchBS)
		s.handle(http.MethodDelete, sc.path+"/{bs}", sc.id+"delete", s.deleteBS)
		s.handle(http.MethodPost, sc.path+"/{bs}/getHealth", sc.id+"getHealth", s.getBSHealth)
	}
}

func (s *Server) bsRel(k scopeKey) string {
	return s.rel(append(scopeParts(k.region), "backendServices", k.name)...)
}

func pathScoped(r *http.Request, name string) scopeKey {
	return scopeKey{region: r.PathValue("region"), name: r.PathValue(name)}
}

func (s *Server) getBS(c *call) (any, *apiError) {
	k := pathScoped(c.r, "bs")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.st.backends[k]
	if b == nil {
		return nil, errNotFound(s.bsRel(k))
	}
	c.w.Header().Set("ETag", b.obj.Fingerprint)
	return b.obj, nil
}

func (s *Server) listBS(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	region := c.r.PathValue("region")
	s.mu.RLock()
	var all []*compute.BackendService
	for k, b := range s.st.backends {
		if k.region == region {
			all = append(all, b.obj)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *compute.BackendService) int { return strings.Compare(a.Name, b.Name) })
	items, next, err := pageByName(all, func(b *compute.BackendService) string { return b.Name }, p)
	if err != nil {
		return nil, err
	}
	return &compute.BackendServiceList{Kind: "compute#backendServiceList", Items: items, NextPageToken: next,
		SelfLink: s.link(append(scopeParts(region), "backendServices")...)}, nil
}

// validateBS checks a backend service body (data is its JSON, to tell absent fields from zero
// ones) and returns the service to store, without id/fingerprint. Called with s.mu held.
func (s *Server) validateBS(k scopeKey, in *compute.BackendService, data []byte) (*backendService, *apiError) {
	if !validName(in.Name) {
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	}
	if in.Name != k.name {
		return nil, errInvalidField("resource.name", in.Name, "The name must match the backend service in the request path.")
	}
	obj := *in
	b := &backendService{key: k, obj: &obj}
	if obj.Protocol == "" {
		obj.Protocol = "HTTP"
	}
	if obj.LoadBalancingScheme == "" {
		obj.LoadBalancingScheme = "EXTERNAL"
	}
	if obj.SessionAffinity == "" {
		obj.SessionAffinity = "NONE"
	}
	if obj.TimeoutSec == 0 {
		obj.TimeoutSec = 30
	}
	if obj.ConnectionDraining == nil {
		obj.ConnectionDraining = &compute.ConnectionDraining{DrainingTimeoutSec: 300} // default [unverified]
	}
	switch {
	case !slices.Contains([]string{"HTTP", "HTTPS", "HTTP2", "TCP", "SSL", "UDP", "GRPC", "H2C", "UNSPECIFIED"}, obj.Protocol):
		return nil, errInvalidField("resource.protocol", obj.Protocol, "Unknown protocol.")
	case !slices.Contains([]string{"EXTERNAL", "EXTERNAL_MANAGED", "INTERNAL", "INTERNAL_MANAGED", "INTERNAL_SELF_MANAGED"}, obj.LoadBalancingScheme):
		return nil, errInvalidField("resource.loadBalancingScheme", obj.LoadBalancingScheme, "Unknown load balancing scheme.")
	case obj.IpAddressSelectionPolicy != "" && !slices.Contains(ipSelectionPolicies, obj.IpAddressSelectionPolicy):
		// Which schemes accept a policy other than IPV4_ONLY is documented (EXTERNAL_MANAGED,
		// INTERNAL_MANAGED, INTERNAL_SELF_MANAGED, regional EXTERNAL); the emulator does not
		// enforce it [leniency].
		return nil, errInvalidField("resource.ipAddressSelectionPolicy", obj.IpAddressSelectionPolicy, "Must be IPV4_ONLY, IPV6_ONLY or PREFER_IPV6.")
	}
	if err := s.validateBSHealthChecks(b); err != nil {
		return nil, err
	}
	if err := s.validateBackends(b, data); err != nil {
		return nil, err
	}
	obj.Kind, obj.SelfLink = "compute#backendService", linkPrefix+s.bsRel(k)
	obj.Region = ""
	if k.region != "" {
		obj.Region = s.regionLink(k.region)
	}
	return b, nil
}

// validateBSHealthChecks resolves the service's health check (at most one) to a full link.
func (s *Server) validateBSHealthChecks(b *backendService) *apiError {
	obj := b.obj
	if len(obj.HealthChecks) > 1 {
		return errInvalidField("resource.healthChecks", strings.Join(obj.HealthChecks, ","), "At most one health check can be specified.")
	}
	obj.HealthChecks = slices.Clone(obj.HealthChecks)
	for i, ref := range obj.HealthChecks {
		hk, ok := s.parseHealthCheckRef(ref, b.key.region)
		switch {
		case !ok:
			return errInvalidField(fmt.Sprintf("resource.healthChecks[%d]", i), ref, "Must be a health check URL.")
		case b.key.region == "" && hk.region != "":
			return errInvalidField(fmt.Sprintf("resource.healthChecks[%d]", i), ref, "A global backend service needs a global health check.")
		case b.key.region != "" && hk.region != "" && hk.region != b.key.region:
			return errInvalidField(fmt.Sprintf("resource.healthChecks[%d]", i), ref, "The health check must be global or in the region of the backend service.")
		case s.st.hcs[hk] == nil:
			return errNotFound(s.hcRel(hk)) // referenced resource missing: 404 [unverified]
		}
		b.hc = hk
		obj.HealthChecks[i] = linkPrefix + s.hcRel(hk)
	}
	return nil
}

// validateBackends enforces the backend rules: at most 50; group a full URL of an existing NEG,
// not repeated; hybrid NEGs only on proxy and service mesh schemes (checkNEGSupported); zonal and
// hybrid NEGs take only RATE or CONNECTION; HTTP/HTTPS/HTTP2 services reject CONNECTION; rate
// and connection limits match the mode, and the mode's own limit is set; capacityScaler 0 or
// 0.1–1 (default 1).
func (s *Server) validateBackends(b *backendService, data []byte) *apiError {
	obj := b.obj
	if len(obj.Backends) > maxBackends {
		return errInvalidField("resource.backends", fmt.Sprintf("%d backends", len(obj.Backends)),
			fmt.Sprintf("A backend service can have at most %d backends.", maxBackends))
	}
	var raw struct {
		Backends []map[string]json.RawMessage `json:"backends"`
	}
	_ = json.Unmarshal(data, &raw)
	httpish := slices.Contains([]string{"HTTP", "HTTPS", "HTTP2"}, obj.Protocol)
	backends := make([]*compute.Backend, len(obj.Backends))
	for i, in := range obj.Backends {
		field := fmt.Sprintf("resource.backends[%d]", i)
		if in == nil {
			return errInvalidField(field, "null", "Backend must not be null.")
		}
		be := *in
		k, ok := s.parseNEGURL(be.Group, true)
		switch {
		case !ok:
			return errInvalidField(field+".group", be.Group, "Must be the full URL (https://www.googleapis.com/compute/v1/projects/...) of a network endpoint group.")
		case s.st.negs[k] == nil:
			return errNotFound(s.negRel(k)) // referenced resource missing: 404 [unverified]
		case slices.Contains(b.groups, k):
			return errInvalidField(field+".group", be.Group, "Duplicate backend group.")
		}
		b.groups = append(b.groups, k)
		be.Group = linkPrefix + s.negRel(k)
		mode := be.BalancingMode
		if mode == "" {
			mode = "UTILIZATION" // the API default, which zonal NEGs do not take
		}
		rate := be.MaxRate != 0 || be.MaxRatePerEndpoint != 0 || be.MaxRatePerInstance != 0
		conn := be.MaxConnections != 0 || be.MaxConnectionsPerEndpoint != 0 || be.MaxConnectionsPerInstance != 0
		if err := checkNEGSupported(b.key, obj, s.st.negs[k].obj.NetworkEndpointType, field); err != nil {
			return err
		}
		switch {
		case mode != "RATE" && mode != "CONNECTION":
			return errInvalidField(field+".balancingMode", mode, "Network endpoint group backends support only the RATE and CONNECTION balancing modes.")
		case mode == "CONNECTION" && httpish:
			return errInvalidField(field+".balancingMode", mode, fmt.Sprintf("Balancing mode CONNECTION is not supported for protocol %s.", obj.Protocol))
		case mode == "CONNECTION" && rate:
			return errInvalidField(field+".balancingMode", mode, "Rate limits (maxRate*) cannot be set with balancing mode CONNECTION.")
		case mode == "RATE" && conn:
			return errInvalidField(field+".balancingMode", mode, "Connection limits (maxConnections*) cannot be set with balancing mode RATE.")
		case mode == "RATE" && be.MaxRate == 0 && be.MaxRatePerEndpoint == 0:
			// Real message (hashicorp/terraform-provider-google#12537); the older API reference:
			// "For RATE mode, either maxRate or one of maxRatePerInstance or maxRatePerEndpoint,
			// as appropriate for group type, must be set."
			return errInvalidField(field, be.Group, "Either maxRate or maxRatePerEndpoint should be set with RATE mode.")
		case mode == "CONNECTION" && be.MaxConnections == 0 && be.MaxConnectionsPerEndpoint == 0:
			// Older API reference: "For CONNECTION mode, either maxConnections or one of
			// maxConnectionsPerInstance or maxConnectionsPerEndpoint, as appropriate for group
			// type, must be set." The message is the emulator's [unverified].
			return errInvalidField(field, be.Group, "Either maxConnections or maxConnectionsPerEndpoint should be set with CONNECTION mode.")
		}
		be.BalancingMode = mode
		if i < len(raw.Backends) {
			if _, set := raw.Backends[i]["capacityScaler"]; !set {
				be.CapacityScaler = 1
			}
		}
		if cs := be.CapacityScaler; cs != 0 && (cs < 0.1 || cs > 1) {
			return errInvalidField(field+".capacityScaler", cs, "Must be 0 or between 0.1 and 1.0.")
		}
		be.ForceSendFields = append(slices.Clone(be.ForceSendFields), "CapacityScaler")
		backends[i] = &be
	}
	obj.Backends = backends
	return nil
}

// checkNEGSupported applies the backend-service rules that depend on the NEG type. Hybrid
// connectivity (NON_GCP_PRIVATE_IP_PORT) NEGs are backends of proxy load balancers (Application
// Load Balancers, proxy Network Load Balancers: schemes EXTERNAL and EXTERNAL_MANAGED globally,
// EXTERNAL_MANAGED and INTERNAL_MANAGED regionally, INTERNAL_MANAGED cross-region) and of Cloud
// Service Mesh (INTERNAL_SELF_MANAGED); the passthrough Network Load Balancers (scheme INTERNAL,
// or EXTERNAL on a regional backend service) take only instance groups and GCE_VM_IP NEGs
// (Backend services overview, "Backend services and supported backend types"). Hybrid NEGs mix
// with GCE_VM_IP_PORT NEGs on one service (documented combination), and take RATE or CONNECTION
// like them. The error message is the emulator's [unverified].
func checkNEGSupported(bk scopeKey, obj *compute.BackendService, negType, field string) *apiError {
	if negType != typeNonGCPIPPort {
		return nil
	}
	scheme := obj.LoadBalancingScheme
	if scheme == "INTERNAL" || (scheme == "EXTERNAL" && bk.region != "") {
		return errInvalidField(field+".group", "", fmt.Sprintf(
			"NON_GCP_PRIVATE_IP_PORT network endpoint groups are not supported by %s backend services with load balancing scheme %s.",
			map[bool]string{true: "regional", false: "global"}[bk.region != ""], scheme))
	}
	return nil
}

// linkHealth fills b.links from the previous version of the service (nil on insert): a NEG
// keeps its link time while it stays a backend of a service that stays health-checked.
func linkHealth(b, prev *backendService, now time.Time) {
	b.links = map[negKey]time.Time{}
	if !b.hasHC() {
		return
	}
	for _, g := range b.groups {
		if t, ok := prev.linkTime(g); ok {
			b.links[g] = t
		} else {
			b.links[g] = now
		}
	}
}

func (b *backendService) linkTime(k negKey) (time.Time, bool) {
	if b == nil || !b.hasHC() {
		return time.Time{}, false
	}
	t, ok := b.links[k]
	return t, ok
}

func (s *Server) insertBS(c *call) (any, *apiError) {
	data, err := readBody(c.r)
	if err != nil {
		return nil, err
	}
	var in compute.BackendService
	if err := decodeStrict(data, &in); err != nil {
		return nil, err
	}
	k := scopeKey{c.r.PathValue("region"), in.Name}
	s.mu.RLock()
	_, err = s.validateBS(k, &in, data)
	exists := s.st.backends[k] != nil
	s.mu.RUnlock()
	switch {
	case err != nil:
		return nil, err
	case exists:
		return nil, errAlreadyExists(s.bsRel(k))
	}
	id := newID()
	return s.startOp(c, opSpec{opType: "insert", region: k.region, target: linkPrefix + s.bsRel(k), targetID: id,
		apply: func(now time.Time) *apiError {
			if s.st.backends[k] != nil {
				return errAlreadyExists(s.bsRel(k))
			}
			b, err := s.validateBS(k, &in, data)
			if err != nil {
				return err
			}
			b.obj.Id, b.obj.CreationTimestamp, b.obj.Fingerprint = id, timestamp(now), newFingerprint()
			linkHealth(b, nil, now)
			s.st.backends[k] = b
			return nil
		}})
}

func (s *Server) updateBS(c *call) (any, *apiError) {
	data, err := readBody(c.r)
	if err != nil {
		return nil, err
	}
	var in compute.BackendService
	if err := decodeStrict(data, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = c.r.PathValue("bs")
	}
	return s.writeBS(c, "update", &in, data)
}

// patchBS applies a JSON merge patch (RFC 7386: arrays such as backends are replaced whole; null
// clears a field). A fingerprint in the patch must be current; a patch without one is accepted
// [unverified against real GCE].
func (s *Server) patchBS(c *call) (any, *apiError) {
	k := pathScoped(c.r, "bs")
	data, err := readBody(c.r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	b := s.st.backends[k]
	s.mu.RUnlock()
	if b == nil {
		return nil, errNotFound(s.bsRel(k))
	}
	merged, fp, err := mergePatch(b.obj, data)
	if err != nil {
		return nil, err
	}
	var in compute.BackendService
	if err := decodeStrict(merged, &in); err != nil {
		return nil, err
	}
	in.Fingerprint = b.obj.Fingerprint
	if fp != nil {
		in.Fingerprint = *fp
	}
	return s.writeBS(c, "patch", &in, merged)
}

// writeBS validates and schedules an update of a backend service: the body's fingerprint (and
// an If-Match header, if sent) must equal the current fingerprint, else 412 conditionNotMet. If
// another write lands before the operation completes, the operation fails CONDITION_NOT_MET.
func (s *Server) writeBS(c *call, opType string, in *compute.BackendService, data []byte) (any, *apiError) {
	k := pathScoped(c.r, "bs")
	s.mu.RLock()
	cur := s.st.backends[k]
	var err *apiError
	if cur != nil {
		_, err = s.validateBS(k, in, data)
	}
	s.mu.RUnlock()
	switch {
	case cur == nil:
		return nil, errNotFound(s.bsRel(k))
	case in.Fingerprint != cur.obj.Fingerprint:
		return nil, errConditionNotMet("Invalid fingerprint.")
	case !ifMatch(c.r, cur.obj.Fingerprint):
		return nil, errConditionNotMet("Precondition Failed: the If-Match ETag does not match the current fingerprint.")
	case err != nil:
		return nil, err
	}
	seen := cur.obj.Fingerprint
	return s.startOp(c, opSpec{opType: opType, region: k.region, target: cur.obj.SelfLink, targetID: cur.obj.Id,
		apply: func(now time.Time) *apiError {
			prev := s.st.backends[k]
			if prev == nil {
				return errNotFound(s.bsRel(k))
			}
			if prev.obj.Fingerprint != seen {
				return errConditionNotMet("Invalid fingerprint.")
			}
			b, err := s.validateBS(k, in, data)
			if err != nil {
				return err
			}
			b.obj.Id, b.obj.CreationTimestamp, b.obj.Fingerprint = prev.obj.Id, prev.obj.CreationTimestamp, newFingerprint()
			linkHealth(b, prev, now)
			s.st.backends[k] = b
			return nil
		}})
}

// ifMatch reports whether the request's If-Match header (if any) matches etag.
func ifMatch(r *http.Request, etag string) bool {
	h := r.Header.Get("If-Match")
	if h == "" || h == "*" {
		return h == "" || etag != ""
	}
	for _, v := range strings.Split(h, ",") {
		v = strings.Trim(strings.TrimPrefix(strings.TrimSpace(v), "W/"), `"`)
		if v == etag {
			return true
		}
	}
	return false
}

func (s *Server) deleteBS(c *call) (any, *apiError) {
	k := pathScoped(c.r, "bs")
	s.mu.RLock()
	cur := s.st.backends[k]
	s.mu.RUnlock()
	switch {
	case cur == nil:
		return nil, errNotFound(s.bsRel(k))
	case !ifMatch(c.r, cur.obj.Fingerprint):
		return nil, errConditionNotMet("Precondition Failed: the If-Match ETag does not match the current fingerprint.")
	}
	return s.startOp(c, opSpec{opType: "delete", region: k.region, target: cur.obj.SelfLink, targetID: cur.obj.Id,
		apply: func(time.Time) *apiError {
			if s.st.backends[k] == nil {
				return errNotFound(s.bsRel(k))
			}
			delete(s.st.backends, k)
			return nil
		}})
}

// getBSHealth answers the health of one backend group (a NEG URL, full or partial) of the
// service: one entry per endpoint, none if the service has no health check.
func (s *Server) getBSHealth(c *call) (any, *apiError) {
	k := pathScoped(c.r, "bs")
	var body compute.ResourceGroupReference
	if err := decodeBody(c.r, &body); err != nil {
		return nil, err
	}
	g, ok := s.parseNEGURL(body.Group, false)
	if !ok {
		return nil, errInvalidField("resource.group", body.Group, "Must be a network endpoint group URL.")
	}
	eps, err := s.groupHealth(k, g)
	if err != nil {
		return nil, err
	}
	out := &compute.BackendServiceGroupHealth{Kind: "compute#backendServiceGroupHealth"}
	for _, e := range eps {
		if e.State == "" && e.IPv6State == "" {
			continue // no health check: no health to report
		}
		hs := &compute.HealthStatus{IpAddress: e.Endpoint.IP, Ipv6Address: e.Endpoint.IPv6, Port: e.Endpoint.Port,
			HealthState: e.State, Ipv6HealthState: e.IPv6State}
		if e.Endpoint.Instance != "" {
			hs.Instance = s.link("zones", e.Zone, "instances", e.Endpoint.Instance)
		}
		out.HealthStatus = append(out.HealthStatus, hs)
	}
	return out, nil
}
