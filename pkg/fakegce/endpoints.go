package fakegce

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// endpointIndex keeps a NEG's endpoints sorted (neg.Endpoint.Less order) for paging, lazily:
// mutations only record additions and count removals; the next listing merges the sorted
// additions into the sorted slice and drops what is gone, in O(n + k log k). A page is then a
// binary search for the page token's key plus the page itself.
type endpointIndex struct {
	sorted  []neg.Endpoint
	added   []neg.Endpoint
	removed int
}

func (x *endpointIndex) dirty() bool { return len(x.added) > 0 || x.removed > 0 }

// rebuild merges pending changes; live is the NEG's endpoint map, the source of truth.
func (x *endpointIndex) rebuild(live map[neg.Endpoint]*epRecord) {
	if !x.dirty() {
		return
	}
	neg.SortEndpoints(x.added)
	out := make([]neg.Endpoint, 0, len(live))
	emit := func(e neg.Endpoint) {
		if _, ok := live[e]; ok && (len(out) == 0 || out[len(out)-1] != e) {
			out = append(out, e)
		}
	}
	i, j := 0, 0
	for i < len(x.sorted) && j < len(x.added) {
		if x.added[j].Less(x.sorted[i]) {
			emit(x.added[j])
			j++
		} else {
			emit(x.sorted[i])
			i++
		}
	}
	for ; i < len(x.sorted); i++ {
		emit(x.sorted[i])
	}
	for ; j < len(x.added); j++ {
		emit(x.added[j])
	}
	x.sorted, x.added, x.removed = out, nil, 0
}

// after returns the position of the first endpoint strictly after e.
func (x *endpointIndex) after(e neg.Endpoint) int {
	return sort.Search(len(x.sorted), func(i int) bool { return e.Less(x.sorted[i]) })
}

// addrKey is one address of an endpoint with its instance and port: a dual-stack endpoint has
// two, a single-stack one one. An attached endpoint owns its keys: another endpoint sharing one
// cannot be attached (see checkEndpointChange).
type addrKey struct {
	instance, addr string
	port           int64
}

// addrKeys returns the endpoint's address keys.
func addrKeys(e neg.Endpoint) []addrKey {
	var out []addrKey
	for _, a := range []string{e.IP, e.IPv6} {
		if a != "" {
			out = append(out, addrKey{e.Instance, a, e.Port})
		}
	}
	return out
}

func (n *negState) add(e neg.Endpoint, rec *epRecord) {
	if _, ok := n.eps[e]; ok {
		return
	}
	n.eps[e] = rec
	if n.byAddr == nil {
		n.byAddr = map[addrKey]neg.Endpoint{}
	}
	for _, k := range addrKeys(e) {
		n.byAddr[k] = e
	}
	n.idx.added = append(n.idx.added, e)
	if len(n.idx.added) > 4096 && len(n.idx.added) > len(n.idx.sorted) {
		n.idx.rebuild(n.eps) // keep pending additions bounded when nobody lists (amortized O(log n))
	}
}

func (n *negState) remove(e neg.Endpoint) {
	if _, ok := n.eps[e]; !ok {
		return
	}
	delete(n.eps, e)
	delete(n.overrides, e)
	for _, k := range addrKeys(e) {
		if n.byAddr[k] == e {
			delete(n.byAddr, k)
		}
	}
	n.idx.removed++
}

// removeInstance drops every endpoint of the instance.
func (n *negState) removeInstance(name string) {
	for e := range n.eps {
		if e.Instance == name {
			n.remove(e)
		}
	}
}

type endpointsBody struct {
	NetworkEndpoints []*compute.NetworkEndpoint `json:"networkEndpoints"`
}

// resolved is a validated endpoint of an attach/detach call.
type resolved struct {
	key         neg.Endpoint
	annotations map[string]string
}

// resolveEndpoints validates the endpoints of an attach (or, leniently, detach) call against the
// NEG's type, zone and network, and returns their keys without duplicates. Instance references
// may be names or full/partial URLs; the key holds the name. Called with s.mu held.
func (s *Server) resolveEndpoints(k negKey, n *negState, in []*compute.NetworkEndpoint, attach bool) ([]resolved, *apiError) {
	out := make([]resolved, 0, len(in))
	seen := make(map[neg.Endpoint]bool, len(in))
	for i, e := range in {
		if e == nil {
			return nil, errInvalidField(fmt.Sprintf("resource.networkEndpoints[%d]", i), "null", "Network endpoint must not be null.")
		}
		key, err := s.resolveEndpoint(k, n, i, e, attach)
		if err != nil {
			return nil, err
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, resolved{key: key, annotations: e.Annotations})
		}
	}
	return out, nil
}

func (s *Server) resolveEndpoint(k negKey, n *negState, i int, e *compute.NetworkEndpoint, attach bool) (neg.Endpoint, *apiError) {
	field := fmt.Sprintf("resource.networkEndpoints[%d]", i)
	typ := n.obj.NetworkEndpointType
	var key neg.Endpoint
	var ip netip.Addr
	if e.IpAddress != "" {
		var err error
		if ip, err = netip.ParseAddr(e.IpAddress); err != nil || !ip.Is4() {
			return key, errInvalidField(field+".ipAddress", e.IpAddress, "Must be an IPv4 address.")
		}
	}
	switch {
	case e.Fqdn != "": // doc: only for NON_GCP_FQDN_PORT endpoints, a type the emulator has not
		return key, errInvalidField(field+".fqdn", e.Fqdn, "FQDN can only be specified for NON_GCP_FQDN_PORT network endpoints.")
	case e.ClientDestinationPort != 0: // doc: only for GCE_VM_IP_PORTMAP
		return key, errInvalidField(field+".clientDestinationPort", e.ClientDestinationPort,
			"Client destination port can only be specified for GCE_VM_IP_PORTMAP network endpoints.")
	}
	if typ == typeNonGCPIPPort {
		if err := checkHybridEndpoint(field, e, ip); err != nil {
			return key, err
		}
		key.IP = ip.String()
	} else {
		var ip6 netip.Addr
		if e.Ipv6Address != "" {
			var ok bool
			if ip6, ok = parseIPv6(e.Ipv6Address); !ok {
				return key, errInvalidField(field+".ipv6Address", e.Ipv6Address, "Must be an IPv6 address.")
			}
			key.IPv6 = ip6.String()
		}
		name, nicIP, err := s.resolveInstance(k, n, field, e, ip, ip6, attach)
		if err != nil {
			return key, err
		}
		key.Instance = name
		switch {
		case ip.IsValid():
			key.IP = ip.String()
		case !ip6.IsValid(): // doc: no ipAddress = the VM's primary IP
			key.IP = nicIP.String()
		} // ipv6Address alone: an IPv6-only endpoint (see resolveInstance)
	}
	port := e.Port
	if port == 0 {
		port = n.obj.DefaultPort
	}
	switch {
	case typ == typeVMIP && e.Port != 0:
		return key, errInvalidField(field+".port", e.Port, "Port must not be set for GCE_VM_IP network endpoints.")
	case typ != typeVMIP && port == 0:
		return key, errInvalidField(field+".port", "", "Port must be specified when the network endpoint group has no default port.")
	case port < 0 || port > 65535:
		return key, errInvalidField(field+".port", port, "Must be between 1 and 65535.")
	}
	key.Port = port
	return key, nil
}

// checkHybridEndpoint applies the NON_GCP_PRIVATE_IP_PORT endpoint rules: an IPv4 address
// (there is no VM to take it from) and a port (checked by the caller), no instance, no IPv6.
//
//   - ipAddress required: documented in effect (the endpoint "is represented by an IP address and
//     port"; the IP defaults only from a VM, and a hybrid endpoint has none).
//   - instance refused: the API reference requires it only for GCE_VM_IP[_PORT] and says nothing
//     for hybrid endpoints; refusing it is the emulator's choice [unverified].
//   - ipv6Address refused: hybrid NEGs are documented with IPv4 endpoints; whether GCE accepts
//     IPv6 ones is [unverified].
//   - Which IPv4 ranges GCE accepts (RFC 1918 only? anything routed over VPN?) is [unverified];
//     the emulator accepts any IPv4 address.
func checkHybridEndpoint(field string, e *compute.NetworkEndpoint, ip netip.Addr) *apiError {
	switch {
	case e.Instance != "":
		return errInvalidField(field+".instance", e.Instance, "Instance must not be set for NON_GCP_PRIVATE_IP_PORT network endpoints.")
	case e.Ipv6Address != "":
		return errInvalidField(field+".ipv6Address", e.Ipv6Address, "IPv6 addresses are not supported for NON_GCP_PRIVATE_IP_PORT network endpoints (fakegce; real GCE [unverified]).")
	case !ip.IsValid():
		return errInvalidField(field+".ipAddress", "", "IP address must be specified for NON_GCP_PRIVATE_IP_PORT network endpoints.")
	}
	return nil
}

// resolveInstance checks a GCE_VM_IP[_PORT] endpoint's instance: it must exist in the NEG's
// zone, have an interface in the NEG's network (and subnetwork, if the NEG names one) and own
// ip (primary IP or alias range) and ip6 (its internal IPv6 range or an alias IPv6 range; the
// interface's subnetwork must not be IPV4_ONLY). It returns the instance name and the
// interface's primary IPv4 address. For detach only the reference is resolved (the VM may be
// gone). The messages of the zone/instance cases are [unverified against real GCE]; the IP case
// follows a real one, and the IPv6 cases copy its shape [unverified].
//
// An endpoint with ipv6Address and no ipAddress is IPv6-only. The documented default "no
// ipAddress = the VM's primary IP" is taken to apply only when ipv6Address is absent too, so
// that an IPv6-only endpoint can be attached in a dual-stack subnetwork (ingress-gce's dual-stack
// migrator treats IPv6-only and dual-stack endpoints as distinct) [unverified]. Without either
// address, an IPV6_ONLY interface (no primary IPv4) is refused [unverified].
func (s *Server) resolveInstance(k negKey, n *negState, field string, e *compute.NetworkEndpoint, ip, ip6 netip.Addr, attach bool) (string, netip.Addr, *apiError) {
	given := ip.IsValid() || ip6.IsValid()
	if e.Instance == "" {
		return "", ip, errInvalidField(field+".instance", "", "Instance must be specified for "+n.obj.NetworkEndpointType+" network endpoints.")
	}
	zone, name, ok := s.parseInstanceRef(e.Instance, k.zone)
	if !ok {
		return "", ip, errInvalidField(field+".instance", e.Instance, "Must be an instance name or URL.")
	}
	if zone != k.zone {
		return "", ip, errInvalidField(field+".instance", e.Instance, fmt.Sprintf(
			"Instance %s is in zone %s but the network endpoint group %s is in zone %s.", name, zone, k.name, k.zone))
	}
	inst := s.st.instances[instKey{zone, name}]
	if inst == nil {
		if !attach && given {
			return name, ip, nil
		}
		for ik := range s.st.instances {
			if ik.name == name {
				return "", ip, errInvalidField(field+".instance", e.Instance, fmt.Sprintf(
					"Instance %s is in zone %s but the network endpoint group %s is in zone %s.", name, ik.zone, k.name, k.zone))
			}
		}
		return "", ip, errInvalidField(field+".instance", e.Instance, fmt.Sprintf(
			"The resource '%s' was not found.", s.rel("zones", zone, "instances", name)))
	}
	nc, ok := inst.nicIn(n.network)
	if ok && n.subnet.name != "" && nc.subnet != n.subnet {
		ok = false
	}
	netName := n.network
	if n.subnet.name != "" {
		netName = n.subnet.name
	}
	notOwned := func(f string, a netip.Addr) *apiError {
		shown := ""
		if a.IsValid() {
			shown = a.String()
		}
		return errInvalidField(f, shown, fmt.Sprintf(
			"Specified IP address %s doesn't belong to the (sub)network %s or to the instance %s.", shown, netName, name))
	}
	switch {
	case !attach && given:
		return name, ip, nil
	case !ok && ip6.IsValid() && !ip.IsValid():
		return "", ip, notOwned("resource.ipv6Address", ip6)
	case !ok:
		return "", ip, notOwned("resource.ipAddress", ip)
	case ip.IsValid() && !nc.owns(ip):
		return "", ip, notOwned("resource.ipAddress", ip)
	case !given && !nc.ip.IsValid():
		return "", ip, errInvalidField(field+".ipAddress", "", fmt.Sprintf(
			"Instance %s has no IPv4 address in %s (IPV6_ONLY); specify ipv6Address (fakegce; real GCE [unverified]).", name, netName))
	}
	if ip6.IsValid() {
		if st := stackOf(s.st.subnets[nc.subnet]); !hasIPv6(st) {
			return "", ip, errInvalidField(field+".ipv6Address", ip6, fmt.Sprintf(
				"IPv6 addresses can't be used in network endpoint group %s: subnetwork %s has stack type %s (fakegce; real GCE [unverified]).",
				k.name, nc.subnet.name, st))
		}
		if !nc.owns(ip6) {
			return "", ip, notOwned("resource.ipv6Address", ip6)
		}
	}
	return name, nc.ip, nil
}

// attachEndpoints validates the whole batch synchronously (400 invalid for a bad endpoint, for
// more than MaxEndpointsPerCall endpoints, or when the NEG would exceed MaxEndpointsPerNEG —
// the emulator's documented choice for the capacity limit), then attaches it when the
// operation completes. If concurrent operations fill the NEG meanwhile, the operation fails
// with INVALID_FIELD_VALUE and attaches nothing.
func (s *Server) attachEndpoints(c *call) (any, *apiError) {
	return s.changeEndpoints(c, true)
}

// detachEndpoints is attachEndpoints' mirror; absent endpoints are ignored unless
// StrictEndpointOps.
func (s *Server) detachEndpoints(c *call) (any, *apiError) {
	return s.changeEndpoints(c, false)
}

func (s *Server) changeEndpoints(c *call, attach bool) (any, *apiError) {
	k := pathNEG(c.r)
	var body endpointsBody
	if err := decodeBody(c.r, &body); err != nil {
		return nil, err
	}
	if n := len(body.NetworkEndpoints); n > s.cfg.MaxEndpointsPerCall {
		return nil, errInvalidField("resource.networkEndpoints", fmt.Sprintf("%d endpoints", n), fmt.Sprintf(
			"At most %d network endpoints can be attached or detached in one call.", s.cfg.MaxEndpointsPerCall))
	}
	s.mu.RLock()
	n := s.st.negs[k]
	if n == nil {
		s.mu.RUnlock()
		return nil, errNotFound(s.negRel(k))
	}
	eps, err := s.resolveEndpoints(k, n, body.NetworkEndpoints, attach)
	if err == nil {
		err = s.checkEndpointChange(k, n, eps, attach)
	}
	self, id := n.obj.SelfLink, n.obj.Id
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	opType := "detachNetworkEndpoints" // operationType spelling is [unverified against real GCE]
	if attach {
		opType = "attachNetworkEndpoints"
	}
	return s.startOp(c, opSpec{opType: opType, zone: k.zone, target: self, targetID: id, apply: func(now time.Time) *apiError {
		n := s.st.negs[k]
		if n == nil || n.obj.Id != id {
			return errNotFound(s.negRel(k))
		}
		if err := s.checkEndpointChange(k, n, eps, attach); err != nil {
			return err
		}
		for _, e := range eps {
			if attach {
				n.add(e.key, &epRecord{attachedAt: now, annotations: e.annotations})
			} else {
				n.remove(e.key)
			}
		}
		return nil
	}})
}

// checkEndpointChange enforces strict mode, the NEG's capacity and, on attach, that no endpoint
// shares an address key (instance, one of its addresses, port) with a different attached
// endpoint or another endpoint of the batch: the same pod cannot be in a NEG as an IPv4-only
// and as a dual-stack endpoint at once. GCE's refusal is inferred from ingress-gce's dual-stack
// migrator, which detaches the single-stack endpoint before attaching the dual-stack one; the
// error's text is the emulator's [unverified]. Called with s.mu held.
func (s *Server) checkEndpointChange(k negKey, n *negState, eps []resolved, attach bool) *apiError {
	fresh := 0
	var batch map[addrKey]neg.Endpoint
	if attach {
		batch = make(map[addrKey]neg.Endpoint, len(eps))
	}
	for _, e := range eps {
		_, present := n.eps[e.key]
		if attach {
			for _, ak := range addrKeys(e.key) {
				other, ok := n.byAddr[ak]
				if !ok || other == e.key {
					other, ok = batch[ak]
				}
				if ok && other != e.key {
					return errInvalidField("resource.networkEndpoints", e.key.String(), fmt.Sprintf(
						"Network endpoint %s shares instance, address %s and port with network endpoint %s of network endpoint group %s; detach that one first (fakegce; real GCE [unverified]).",
						e.key, ak.addr, other, k.name))
				}
				batch[ak] = e.key
			}
		}
		switch {
		case s.cfg.StrictEndpointOps && attach && present:
			return errInvalidField("resource.networkEndpoints", e.key.String(), fmt.Sprintf(
				"The network endpoint is already attached to network endpoint group %s (fakegce strict mode; real GCE [unverified]).", k.name))
		case s.cfg.StrictEndpointOps && !attach && !present:
			return errInvalidField("resource.networkEndpoints", e.key.String(), fmt.Sprintf(
				"The network endpoint is not attached to network endpoint group %s (fakegce strict mode; real GCE [unverified]).", k.name))
		case !present:
			fresh++
		}
	}
	if attach && len(n.eps)+fresh > s.cfg.MaxEndpointsPerNEG {
		return errInvalidField("resource.networkEndpoints", fmt.Sprintf("%d endpoints", fresh), fmt.Sprintf(
			"Exceeded the maximum number of network endpoints (%d) in network endpoint group %s, which has %d.",
			s.cfg.MaxEndpointsPerNEG, k.name, len(n.eps)))
	}
	return nil
}
