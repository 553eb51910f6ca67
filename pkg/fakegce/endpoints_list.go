package fakegce

import (
	"fmt"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Wire shapes of listNetworkEndpoints (same JSON as compute.NetworkEndpointWithHealthStatus,
// without its per-object MarshalJSON cost).
type (
	wireEndpointList struct {
		Kind          string         `json:"kind"`
		ID            string         `json:"id,omitempty"`
		Items         []wireEndpoint `json:"items,omitempty"`
		NextPageToken string         `json:"nextPageToken,omitempty"`
	}
	wireEndpoint struct {
		NetworkEndpoint wireNE       `json:"networkEndpoint"`
		Healths         []wireHealth `json:"healths,omitempty"`
	}
	wireNE struct {
		Instance    string            `json:"instance,omitempty"`
		IPAddress   string            `json:"ipAddress,omitempty"`
		IPv6Address string            `json:"ipv6Address,omitempty"`
		Port        int64             `json:"port,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	wireHealth struct {
		BackendService wireBSRef `json:"backendService"`
		HealthCheck    wireHCRef `json:"healthCheck"`
		HealthState    string    `json:"healthState,omitempty"`
		IPv6State      string    `json:"ipv6HealthState,omitempty"`
	}
	wireBSRef struct {
		BackendService string `json:"backendService"`
	}
	wireHCRef struct {
		HealthCheck string `json:"healthCheck"`
	}
)

// listEndpoints pages the NEG's endpoints in neg.Endpoint.Less order; with healthStatus SHOW
// each endpoint carries one health entry per health-checked backend service using the NEG, with
// healthState for its IPv4 address and ipv6HealthState for its IPv6 address as the service
// checks them (see endpointHealth).
func (s *Server) listEndpoints(c *call) (any, *apiError) {
	k := pathNEG(c.r)
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	var body compute.NetworkEndpointGroupsListEndpointsRequest
	if c.r.ContentLength != 0 {
		if err := decodeBody(c.r, &body); err != nil {
			return nil, err
		}
	}
	show := false
	switch body.HealthStatus {
	case "SHOW":
		show = true
	case "", "SKIP":
	default:
		return nil, errInvalidField("healthStatus", body.HealthStatus, "Must be SHOW or SKIP.")
	}
	var after *neg.Endpoint
	if p.token != "" {
		e, err := parseEndpointToken(p.token)
		if err != nil {
			return nil, err
		}
		after = &e
	}
	out := &wireEndpointList{Kind: "compute#networkEndpointGroupsListNetworkEndpoints", ID: s.negRel(k)}
	found := s.withIndexedNEG(k, func(n *negState) {
		start := 0
		if after != nil {
			start = n.idx.after(*after)
		}
		end := min(start+p.max, len(n.idx.sorted))
		page := n.idx.sorted[start:end]
		if end < len(n.idx.sorted) {
			out.NextPageToken = endpointToken(page[len(page)-1])
		}
		var checkers []checker
		if show {
			checkers = s.checkersOf(k)
		}
		now := time.Now()
		out.Items = make([]wireEndpoint, len(page))
		for i, e := range page {
			rec := n.eps[e]
			item := wireEndpoint{NetworkEndpoint: wireNE{Instance: e.Instance, IPAddress: e.IP, IPv6Address: e.IPv6, Port: e.Port, Annotations: rec.annotations}}
			for _, ch := range checkers {
				v4, v6 := s.endpointHealth(ch, n, e, rec, now)
				item.Healths = append(item.Healths, wireHealth{BackendService: wireBSRef{ch.bsLink},
					HealthCheck: wireHCRef{ch.hcLink}, HealthState: v4, IPv6State: v6})
			}
			out.Items[i] = item
		}
	})
	if !found {
		return nil, errNotFound(s.negRel(k))
	}
	return out, nil
}

// withIndexedNEG runs f on the NEG with its index up to date, under the read lock (or the write
// lock when the index had to be rebuilt). It reports whether the NEG exists.
func (s *Server) withIndexedNEG(k negKey, f func(n *negState)) bool {
	s.mu.RLock()
	n := s.st.negs[k]
	if n != nil && !n.idx.dirty() {
		defer s.mu.RUnlock()
		f(n)
		return true
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n = s.st.negs[k]; n == nil {
		return false
	}
	n.idx.rebuild(n.eps)
	f(n)
	return true
}

// NEGEndpoints returns the NEG's current endpoints (sorted), and whether the NEG exists.
func (s *Server) NEGEndpoints(zone, name string) ([]neg.Endpoint, bool) {
	var out []neg.Endpoint
	ok := s.withIndexedNEG(negKey{zone, name}, func(n *negState) { out = slices.Clone(n.idx.sorted) })
	return out, ok
}

// Health states an endpoint can be forced to.
var healthStates = []string{"HEALTHY", "UNHEALTHY", "DRAINING", "UNKNOWN"}

// ForceEndpointHealth forces the health state every backend service reports for the endpoint
// (HEALTHY, UNHEALTHY, DRAINING or UNKNOWN; "" removes the override), for each address the
// service checks (healthState and ipv6HealthState alike). ep is the whole endpoint: a
// dual-stack endpoint is named with its IPv6 address too. The override may be set
// before the endpoint is attached; it is dropped when the endpoint is detached. It only shows
// where GCE would report health at all (the NEG is a backend of a health-checked backend
// service).
func (s *Server) ForceEndpointHealth(zone, negName string, ep neg.Endpoint, state string) error {
	if state != "" && !slices.Contains(healthStates, state) {
		return fmt.Errorf("fakegce: health state %q: want one of %v or empty", state, healthStates)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.st.negs[negKey{zone, negName}]
	if n == nil {
		return fmt.Errorf("fakegce: no NEG %s/%s", zone, negName)
	}
	if state == "" {
		delete(n.overrides, ep)
		return nil
	}
	if n.overrides == nil {
		n.overrides = map[neg.Endpoint]string{}
	}
	n.overrides[ep] = state
	return nil
}

// SetEndpointHealth is ForceEndpointHealth for tests: it panics if the NEG does not exist or the
// state is not valid.
func (s *Server) SetEndpointHealth(zone, negName string, ep neg.Endpoint, state string) {
	if err := s.ForceEndpointHealth(zone, negName, ep, state); err != nil {
		panic(err)
	}
}
