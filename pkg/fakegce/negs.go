package fakegce

import (
	"net/http"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// NEG types the emulator implements.
const (
	typeVMIPPort       = "GCE_VM_IP_PORT"
	typeVMIP           = "GCE_VM_IP"
	typeNonGCPIPPort   = "NON_GCP_PRIVATE_IP_PORT"
	defaultNEGType     = typeVMIPPort // API default when networkEndpointType is absent [unverified]
	negResourceKindMsg = "network_endpoint_group"
)

// negState is a stored zonal NEG. obj holds its metadata (size is rendered from eps).
type negState struct {
	obj       compute.NetworkEndpointGroup
	network   string   // network name
	subnet    scopeKey // zero if the NEG names no subnetwork
	eps       map[neg.Endpoint]*epRecord
	idx       endpointIndex
	overrides map[neg.Endpoint]string  // health states forced through the admin knob
	byAddr    map[addrKey]neg.Endpoint // the attached endpoint owning each address key
}

// epRecord is what the emulator knows about one attached endpoint.
type epRecord struct {
	attachedAt  time.Time
	annotations map[string]string
}

// render returns the NEG as the API shows it.
func (n *negState) render() *compute.NetworkEndpointGroup {
	cp := n.obj
	cp.Size = int64(len(n.eps))
	cp.ForceSendFields = []string{"Size"}
	return &cp
}

func (s *Server) negRoutes() {
	const base = "zones/{zone}/networkEndpointGroups"
	const id = "compute.networkEndpointGroups."
	s.handle(http.MethodPost, base, id+"insert", s.insertNEG)
	s.handle(http.MethodGet, base, id+"list", s.listNEGs)
	s.handle(http.MethodGet, base+"/{neg}", id+"get", s.getNEG)
	s.handle(http.MethodDelete, base+"/{neg}", id+"delete", s.deleteNEG)
	s.handle(http.MethodGet, "aggregated/networkEndpointGroups", id+"aggregatedList", s.aggregatedNEGs)
	s.handle(http.MethodPost, base+"/{neg}/attachNetworkEndpoints", id+"attachNetworkEndpoints", s.attachEndpoints)
	s.handle(http.MethodPost, base+"/{neg}/detachNetworkEndpoints", id+"detachNetworkEndpoints", s.detachEndpoints)
	s.handle(http.MethodPost, base+"/{neg}/listNetworkEndpoints", id+"listNetworkEndpoints", s.listEndpoints)
}

func pathNEG(r *http.Request) negKey { return negKey{r.PathValue("zone"), r.PathValue("neg")} }

func (s *Server) negRel(k negKey) string {
	return s.rel("zones", k.zone, "networkEndpointGroups", k.name)
}

func (s *Server) getNEG(c *call) (any, *apiError) {
	k := pathNEG(c.r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.st.negs[k]
	if n == nil {
		return nil, errNotFound(s.negRel(k))
	}
	return n.render(), nil
}

// negsOf returns the NEGs of zone ("" = every zone) sorted by (zone, name).
func (s *Server) negsOf(zone string) []scoped[*compute.NetworkEndpointGroup] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []scoped[*compute.NetworkEndpointGroup]
	for k, n := range s.st.negs {
		if zone == "" || k.zone == zone {
			out = append(out, scoped[*compute.NetworkEndpointGroup]{scope: "zones/" + k.zone, name: k.name, v: n.render()})
		}
	}
	sortScoped(out)
	return out
}

func (s *Server) listNEGs(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	zone := c.r.PathValue("zone")
	page, next, err := pageByName(s.negsOf(zone), func(i scoped[*compute.NetworkEndpointGroup]) string { return i.name }, p)
	if err != nil {
		return nil, err
	}
	out := &compute.NetworkEndpointGroupList{Kind: "compute#networkEndpointGroupList", NextPageToken: next,
		Id: s.rel("zones", zone, "networkEndpointGroups"), SelfLink: s.link("zones", zone, "networkEndpointGroups")}
	for _, i := range page {
		out.Items = append(out.Items, i.v)
	}
	return out, nil
}

// aggregatedNEGs answers every zone of the region under "zones/<zone>", and, like GCE (which
// also lists regional and global NEGs there), the scopes "regions/<region>" and "global" —
// always empty here, so with a NO_RESULTS_ON_PAGE warning. Clients must ignore scopes they do
// not care about.
func (s *Server) aggregatedNEGs(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	page, next, err := pageScoped(s.negsOf(""), p)
	if err != nil {
		return nil, err
	}
	out := &compute.NetworkEndpointGroupAggregatedList{Kind: "compute#networkEndpointGroupAggregatedList",
		NextPageToken: next, Id: s.rel("aggregated", "networkEndpointGroups"),
		SelfLink: s.link("aggregated", "networkEndpointGroups"), Items: map[string]compute.NetworkEndpointGroupsScopedList{}}
	for _, i := range page {
		l := out.Items[i.scope]
		l.NetworkEndpointGroups = append(l.NetworkEndpointGroups, i.v)
		out.Items[i.scope] = l
	}
	scopes := []string{"global", "regions/" + s.cfg.Region}
	for _, z := range s.cfg.Zones {
		scopes = append(scopes, "zones/"+z)
	}
	for _, sc := range scopes {
		if len(out.Items[sc].NetworkEndpointGroups) == 0 {
			out.Items[sc] = compute.NetworkEndpointGroupsScopedList{Warning: &compute.NetworkEndpointGroupsScopedListWarning{
				Code: "NO_RESULTS_ON_PAGE", Message: noResultsMessage(sc),
				Data: []*compute.NetworkEndpointGroupsScopedListWarningData{{Key: "scope", Value: sc}}}}
		}
	}
	return out, nil
}

// validateNEG checks an insert body and returns the NEG to store. Called with s.mu held.
func (s *Server) validateNEG(k negKey, in *compute.NetworkEndpointGroup) (*negState, *apiError) {
	if !validName(in.Name) {
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	}
	typ := in.NetworkEndpointType
	if typ == "" {
		typ = defaultNEGType
	}
	if !slices.Contains([]string{typeVMIPPort, typeVMIP, typeNonGCPIPPort}, typ) {
		return nil, errInvalidField("resource.networkEndpointType", typ,
			"fakegce implements zonal NEGs of type GCE_VM_IP_PORT, GCE_VM_IP and NON_GCP_PRIVATE_IP_PORT only.")
	}
	// Network: "if this field is not specified, a default network will be used" for
	// GCE_VM_IP_PORT and NON_GCP_PRIVATE_IP_PORT (API reference), so hybrid NEGs do not require
	// it; a hybrid NEG's network is the VPC its endpoints are routed from (VPN / Interconnect).
	n := &negState{eps: map[neg.Endpoint]*epRecord{}, network: "default"}
	if in.Network != "" {
		var ok bool
		if n.network, ok = s.parseNetworkRef(in.Network); !ok {
			return nil, errInvalidField("resource.network", in.Network, "Must be a network URL.")
		}
	}
	if s.st.networks[n.network] == nil {
		return nil, errNotFound(s.rel("global", "networks", n.network))
	}
	if in.Subnetwork != "" && typ == typeNonGCPIPPort {
		// The API reference documents no subnetwork rule for hybrid NEGs; the hybrid NEG guides
		// create them with --network only, and their endpoints are outside every subnetwork.
		// Refusing is the emulator's choice (real GCE may accept or ignore it) [unverified].
		return nil, errInvalidField("resource.subnetwork", in.Subnetwork,
			"Subnetwork must not be set for NON_GCP_PRIVATE_IP_PORT network endpoint groups (fakegce; real GCE [unverified]).")
	}
	if in.Subnetwork != "" {
		region, name, ok := s.parseSubnetworkRef(in.Subnetwork)
		if !ok {
			return nil, errInvalidField("resource.subnetwork", in.Subnetwork, "Must be a subnetwork URL.")
		}
		sn := s.st.subnets[scopeKey{region, name}]
		if sn == nil {
			return nil, errNotFound(s.rel("regions", region, "subnetworks", name))
		}
		if nn, _ := s.parseNetworkRef(sn.Network); nn != n.network || region != s.cfg.Region {
			return nil, errInvalidField("resource.subnetwork", in.Subnetwork,
				"The subnetwork must belong to the network and to the region of the zone.")
		}
		n.subnet = scopeKey{region, name}
	}
	switch {
	case in.DefaultPort < 0 || in.DefaultPort > 65535:
		return nil, errInvalidField("resource.defaultPort", in.DefaultPort, "Must be between 1 and 65535.")
	case typ == typeVMIP && in.DefaultPort != 0:
		return nil, errInvalidField("resource.defaultPort", in.DefaultPort, "Default port must not be set for GCE_VM_IP network endpoint groups.")
	}
	n.obj = compute.NetworkEndpointGroup{
		Kind: "compute#networkEndpointGroup", Name: in.Name, Description: in.Description,
		NetworkEndpointType: typ, DefaultPort: in.DefaultPort, Annotations: in.Annotations,
		Network: s.link("global", "networks", n.network), Zone: s.zoneLink(k.zone),
		SelfLink: linkPrefix + s.negRel(k),
	}
	if n.subnet.name != "" {
		n.obj.Subnetwork = s.link("regions", n.subnet.region, "subnetworks", n.subnet.name)
	}
	return n, nil
}

func (s *Server) insertNEG(c *call) (any, *apiError) {
	var in compute.NetworkEndpointGroup
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	k := negKey{c.r.PathValue("zone"), in.Name}
	s.mu.RLock()
	n, err := s.validateNEG(k, &in)
	_, exists := s.st.negs[k]
	s.mu.RUnlock()
	switch {
	case err != nil:
		return nil, err
	case exists:
		return nil, errAlreadyExists(s.negRel(k))
	}
	n.obj.Id = newID()
	return s.startOp(c, opSpec{opType: "insert", zone: k.zone, target: n.obj.SelfLink, targetID: n.obj.Id,
		apply: func(now time.Time) *apiError {
			if _, ok := s.st.negs[k]; ok {
				return errAlreadyExists(s.negRel(k))
			}
			n.obj.CreationTimestamp = timestamp(now)
			s.st.negs[k] = n
			return nil
		}})
}

// negUser returns the relative link of a backend service that references the NEG, if any.
// Called with s.mu held.
func (s *Server) negUser(k negKey) (string, bool) {
	var users []string
	for bk, bs := range s.st.backends {
		if bs.hasGroup(k) {
			users = append(users, s.rel(append(scopeParts(bk.region), "backendServices", bk.name)...))
		}
	}
	if len(users) == 0 {
		return "", false
	}
	slices.Sort(users)
	return users[0], true
}

// deleteNEG deletes a NEG with whatever endpoints it has (GCE does not require it to be
// empty); a NEG referenced by a global or regional backend service fails synchronously with
// 400 resourceInUseByAnotherResource.
func (s *Server) deleteNEG(c *call) (any, *apiError) {
	k := pathNEG(c.r)
	rel := s.negRel(k)
	s.mu.RLock()
	n := s.st.negs[k]
	user, inUse := s.negUser(k)
	s.mu.RUnlock()
	switch {
	case n == nil:
		return nil, errNotFound(rel)
	case inUse:
		return nil, errInUse(negResourceKindMsg, rel, user)
	}
	return s.startOp(c, opSpec{opType: "delete", zone: k.zone, target: n.obj.SelfLink, targetID: n.obj.Id,
		apply: func(time.Time) *apiError {
			if s.st.negs[k] == nil {
				return errNotFound(rel)
			}
			if user, inUse := s.negUser(k); inUse {
				return errInUse(negResourceKindMsg, rel, user)
			}
			delete(s.st.negs, k)
			return nil
		}})
}
