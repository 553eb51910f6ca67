package fakegce

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Health model
//
// GCE reports an endpoint's health only through backend services: an endpoint of a NEG that is
// a backend of a backend service with a health check has one health entry per such service
// (listNetworkEndpoints with healthStatus SHOW, backendServices.getHealth); other endpoints
// have none. The state of an entry is, in order:
//
//  1. the state forced through ForceEndpointHealth / POST /admin/health, if any;
//  2. in fixed mode: HEALTHY once Config.FixedHealthyDelay has passed since the endpoint became
//     attached to the health-checked service (the later of its attach time and the time the NEG
//     became a backend of the service while it had a health check), UNKNOWN before;
//  3. in probe mode: the result of really probing the endpoint (see probe.go): UNKNOWN until
//     healthyThreshold consecutive successes (HEALTHY) or unhealthyThreshold consecutive
//     failures (UNHEALTHY).
//
// What real GCE reports before the first probe is [unverified]; UNKNOWN is the emulator's choice.
//
// Address families: an entry reports healthState for the endpoint's IPv4 address and
// ipv6HealthState for its IPv6 address, each only when the endpoint has that address and the
// backend service checks that family (ipFamilies: IPV4_ONLY, the default, checks IPv4;
// IPV6_ONLY IPv6; PREFER_IPV6 both — as documented for ipAddressSelectionPolicy). Each family is
// probed on its own address (probe mode); fixed mode and forced states apply to both. An
// endpoint with no address of a checked family (an IPv6-only endpoint behind an IPV4_ONLY
// service, an IPv4-only one behind IPV6_ONLY) reports healthState UNKNOWN [unverified].

// checker is one health-checked backend service that uses a NEG.
type checker struct {
	bs     scopeKey
	bsLink string
	hc     scopeKey
	hcLink string
	since  time.Time // when the NEG became a health-checked backend of bs
	policy string    // the service's ipAddressSelectionPolicy
}

// checkersOf returns the health-checked backend services that have the NEG as a backend,
// sorted by link. Called with s.mu held.
func (s *Server) checkersOf(k negKey) []checker {
	var out []checker
	for bk, b := range s.st.backends {
		if b.hasHC() && b.hasGroup(k) {
			out = append(out, checker{bs: bk, bsLink: b.obj.SelfLink, hc: b.hc, hcLink: b.obj.HealthChecks[0], since: b.links[k],
				policy: b.obj.IpAddressSelectionPolicy})
		}
	}
	slices.SortFunc(out, func(a, b checker) int { return strings.Compare(a.bsLink, b.bsLink) })
	return out
}

// endpointHealth is the health the checker reports for an endpoint: the state of its IPv4
// address (healthState) and of its IPv6 address (ipv6HealthState), "" for a family the service
// does not check or the endpoint lacks, and healthState UNKNOWN when that leaves nothing (see
// the health model above). Called with s.mu held.
func (s *Server) endpointHealth(ch checker, n *negState, e neg.Endpoint, rec *epRecord, now time.Time) (v4, v6 string) {
	c4, c6 := ipFamilies(ch.policy)
	c4, c6 = c4 && e.IP != "", c6 && e.IPv6 != ""
	if !c4 && !c6 {
		return "UNKNOWN", ""
	}
	state := func(ipv6 bool) string {
		if st, ok := n.overrides[e]; ok {
			return st
		}
		if s.probe != nil {
			return s.probe.state(probeKey{hc: ch.hc, ep: e, ipv6: ipv6})
		}
		since := rec.attachedAt
		if ch.since.After(since) {
			since = ch.since
		}
		if now.Sub(since) >= s.cfg.FixedHealthyDelay {
			return "HEALTHY"
		}
		return "UNKNOWN"
	}
	if c4 {
		v4 = state(false)
	}
	if c6 {
		v6 = state(true)
	}
	return v4, v6
}

// BackendEndpoint is one endpoint behind a backend service, with the health the service
// reports for it: State for its IPv4 address (healthState) and IPv6State for its IPv6 address
// (ipv6HealthState), both "" when the service has no health check (see endpointHealth).
type BackendEndpoint struct {
	Zone      string       `json:"zone"`
	NEG       string       `json:"neg"`
	Endpoint  neg.Endpoint `json:"endpoint"`
	State     string       `json:"state,omitempty"`
	IPv6State string       `json:"ipv6State,omitempty"`
}

// BackendHealth returns every endpoint of every backend NEG of the backend service (region ""
// = global), in backends order and then endpoint order, with its health. It is what
// backendServices.getHealth answers per group, and what an emulated load balancer would route
// by (HEALTHY endpoints only).
func (s *Server) BackendHealth(region, name string) ([]BackendEndpoint, error) {
	k := scopeKey{region, name}
	s.mu.RLock()
	b := s.st.backends[k]
	s.mu.RUnlock()
	if b == nil {
		return nil, fmt.Errorf("fakegce: no backend service %s", s.bsRel(k))
	}
	var out []BackendEndpoint
	for _, g := range b.groups {
		eps, err := s.groupHealth(k, g)
		if err != nil && err.reason != reasonInvalid && err.reason != reasonNotFound {
			return nil, fmt.Errorf("fakegce: %s", err.message)
		}
		out = append(out, eps...)
	}
	return out, nil
}

// groupHealth returns the endpoints of backend group g of service k with their health (State
// "" if the service has no health check).
func (s *Server) groupHealth(k scopeKey, g negKey) ([]BackendEndpoint, *apiError) {
	var out []BackendEndpoint
	var err *apiError
	found := s.withIndexedNEG(g, func(n *negState) {
		b := s.st.backends[k]
		switch {
		case b == nil:
			err = errNotFound(s.bsRel(k))
			return
		case !b.hasGroup(g):
			err = errInvalidField("resource.group", linkPrefix+s.negRel(g), "The group is not a backend of backend service "+k.name+".")
			return
		}
		var ch *checker
		for _, c := range s.checkersOf(g) {
			if c.bs == k {
				ch = &c
			}
		}
		now := time.Now()
		out = make([]BackendEndpoint, 0, len(n.idx.sorted))
		for _, e := range n.idx.sorted {
			be := BackendEndpoint{Zone: g.zone, NEG: g.name, Endpoint: e}
			if ch != nil {
				be.State, be.IPv6State = s.endpointHealth(*ch, n, e, n.eps[e], now)
			}
			out = append(out, be)
		}
	})
	if !found {
		return nil, errNotFound(s.negRel(g))
	}
	return out, err
}

// healthChanged tells the load balancer frontends and the prober (probe mode) that endpoints,
// backends or health checks changed. Called without s.mu, after every applied operation.
func (s *Server) healthChanged() {
	s.frontendsChanged()
	if s.probe == nil {
		return
	}
	select {
	case s.probe.dirty <- struct{}{}:
	default:
	}
}
