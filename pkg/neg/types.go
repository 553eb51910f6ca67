package neg

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Endpoint is one network endpoint of a zonal NEG: a pod IP and port, on the VM instance that
// hosts the pod in a GCE_VM_IP_PORT NEG, without instance in a NON_GCP_PRIVATE_IP_PORT (hybrid)
// NEG. A dual-stack endpoint carries the pod's IPv4 and IPv6 addresses, an IPv6-only one just
// IPv6. All four fields together are its identity, as in GCE: the same pod as an IPv4-only and
// as a dual-stack endpoint are two different endpoints (see plan.Migrations).
type Endpoint struct {
	// Instance is the GCE instance name (not URL) that hosts the IP; empty in hybrid NEGs.
	Instance string
	// IP is the pod's IPv4 address (ipAddress); empty in an IPv6-only endpoint.
	IP string
	// Port is the pod's (target) port.
	Port int64
	// IPv6 is the pod's IPv6 address (ipv6Address) in a dual-stack or IPv6-only endpoint.
	IPv6 string
}

// String renders the endpoint as instance/ip:port (ip:port without instance), with the IPv6
// address after the port for a dual-stack endpoint (instance/ip:port/ipv6) and in brackets
// for an IPv6-only one (instance/[ipv6]:port), for logs and messages.
func (e Endpoint) String() string {
	addr := fmt.Sprintf("%s:%d", e.IP, e.Port)
	switch {
	case e.IP == "" && e.IPv6 != "":
		addr = fmt.Sprintf("[%s]:%d", e.IPv6, e.Port)
	case e.IPv6 != "":
		addr += "/" + e.IPv6
	}
	if e.Instance == "" {
		return addr
	}
	return e.Instance + "/" + addr
}

// SingleStack reports whether the endpoint has one address family only.
func (e Endpoint) SingleStack() bool { return e.IP == "" || e.IPv6 == "" }

// Compare orders endpoints by IP, then port, then instance, then IPv6 (the one order of endpoints, so plans
// and listings are deterministic): -1, 0 or +1, as for slices.SortFunc.
func Compare(a, b Endpoint) int {
	if c := cmp.Compare(a.IP, b.IP); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Instance, b.Instance); c != 0 {
		return c
	}
	return cmp.Compare(a.IPv6, b.IPv6)
}

// Less reports whether e sorts before o (see Compare).
func (e Endpoint) Less(o Endpoint) bool { return Compare(e, o) < 0 }

// EndpointSet is a set of endpoints. The zero value (nil) is an empty, read-only set.
type EndpointSet map[Endpoint]struct{}

// NewEndpointSet returns a set holding eps.
func NewEndpointSet(eps ...Endpoint) EndpointSet {
	s := make(EndpointSet, len(eps))
	for _, e := range eps {
		s[e] = struct{}{}
	}
	return s
}

// Insert adds eps to the set.
func (s EndpointSet) Insert(eps ...Endpoint) {
	for _, e := range eps {
		s[e] = struct{}{}
	}
}

// Has reports whether e is in the set.
func (s EndpointSet) Has(e Endpoint) bool { _, ok := s[e]; return ok }

// Len returns the number of endpoints in the set.
func (s EndpointSet) Len() int { return len(s) }

// Sorted returns the endpoints in a deterministic order (see Endpoint.Less).
func (s EndpointSet) Sorted() []Endpoint {
	out := make([]Endpoint, 0, len(s))
	for e := range s {
		out = append(out, e)
	}
	SortEndpoints(out)
	return out
}

// Equal reports whether both sets hold the same endpoints.
func (s EndpointSet) Equal(o EndpointSet) bool {
	if len(s) != len(o) {
		return false
	}
	for e := range s {
		if !o.Has(e) {
			return false
		}
	}
	return true
}

// SortEndpoints sorts eps in place in the order of Endpoint.Less.
func SortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, Compare)
}

// Ref names one zonal NEG.
type Ref struct {
	Zone string
	Name string
}

// String renders the reference as zone/name.
func (r Ref) String() string { return r.Zone + "/" + r.Name }

// Sample renders up to n endpoints for a message ("a, b, c, and 7 more").
func Sample(eps []Endpoint, n int) string {
	var parts []string
	for i, e := range eps {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(eps)-n))
			break
		}
		parts = append(parts, e.String())
	}
	return strings.Join(parts, ", ")
}
