package fakegce

import (
	"net/http"
	"net/netip"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// defaultSubnetRange is the range of the default subnetwork (GCE's auto-mode range for
// us-central1; used for every region here [approximation]).
const defaultSubnetRange = "10.128.0.0/20"

// state is everything the emulator stores. It is guarded by Server.mu.
type state struct {
	networks  map[string]*compute.Network
	subnets   map[scopeKey]*compute.Subnetwork
	instances map[instKey]*instance
	negs      map[negKey]*negState
	backends  map[scopeKey]*backendService
	hcs       map[scopeKey]*healthCheck
}

// scopeKey names a global (region "") or regional resource.
type scopeKey struct{ region, name string }

// negKey names a zonal NEG.
type negKey struct{ zone, name string }

// instKey names an instance.
type instKey struct{ zone, name string }

func newState() *state {
	return &state{
		networks: map[string]*compute.Network{}, subnets: map[scopeKey]*compute.Subnetwork{},
		instances: map[instKey]*instance{}, negs: map[negKey]*negState{},
		backends: map[scopeKey]*backendService{}, hcs: map[scopeKey]*healthCheck{},
	}
}

// addDefaultNetwork creates the "default" network and its "default" subnetwork in the
// configured region: auto mode and IPv4 only, or, with Config.DefaultStackType IPV4_IPV6 or
// IPV6_ONLY, custom mode with internal IPv6 range DefaultNetworkIPv6Range and a subnetwork of
// that stack type with range DefaultSubnetIPv6Range (see ipv6.go).
func (s *Server) addDefaultNetwork() {
	now := time.Now()
	stack := s.cfg.DefaultStackType
	n := s.newNetwork("default", !hasIPv6(stack), now)
	sn := &compute.Subnetwork{Name: "default", Network: n.SelfLink, IpCidrRange: defaultSubnetRange, StackType: stack}
	if hasIPv6(stack) {
		n.EnableUlaInternalIpv6, n.InternalIpv6Range = true, DefaultNetworkIPv6Range
		sn.Ipv6AccessType, sn.InternalIpv6Prefix = "INTERNAL", DefaultSubnetIPv6Range
		if stack == StackIPv6Only {
			sn.IpCidrRange = ""
		}
	}
	s.st.networks["default"] = n
	s.addSubnet(sn, s.cfg.Region, now)
}

func (s *Server) newNetwork(name string, auto bool, now time.Time) *compute.Network {
	return &compute.Network{
		Kind: "compute#network", Id: newID(), Name: name, CreationTimestamp: timestamp(now),
		SelfLink: s.link("global", "networks", name), AutoCreateSubnetworks: auto,
		RoutingConfig: &compute.NetworkRoutingConfig{RoutingMode: "REGIONAL"}, Mtu: 1460,
		ForceSendFields: []string{"AutoCreateSubnetworks"},
	}
}

// addSubnet stores a validated subnetwork and links it from its network. Called with s.mu held
// (or before the server is shared).
func (s *Server) addSubnet(sn *compute.Subnetwork, region string, now time.Time) {
	netName, _ := s.parseNetworkRef(sn.Network)
	sn.Kind, sn.Id, sn.CreationTimestamp = "compute#subnetwork", newID(), timestamp(now)
	sn.Region, sn.Network = s.regionLink(region), s.link("global", "networks", netName)
	sn.SelfLink = s.link("regions", region, "subnetworks", sn.Name)
	if sn.IpCidrRange != "" {
		sn.GatewayAddress = netip.MustParsePrefix(sn.IpCidrRange).Masked().Addr().Next().String()
	}
	sn.Purpose = "PRIVATE"
	if sn.StackType == "" {
		sn.StackType = StackIPv4Only
	}
	s.st.subnets[scopeKey{region, sn.Name}] = sn
	if n := s.st.networks[netName]; n != nil {
		subs := append(slices.Clone(n.Subnetworks), sn.SelfLink) // never mutate what readers may hold
		slices.Sort(subs)
		n.Subnetworks = subs
	}
}

func (s *Server) networkRoutes() {
	s.handle(http.MethodGet, "zones", "compute.zones.list", s.listZones)
	s.handle(http.MethodGet, "zones/{zone}", "compute.zones.get", s.getZone)
	s.handle(http.MethodGet, "regions", "compute.regions.list", s.listRegions)
	s.handle(http.MethodGet, "regions/{region}", "compute.regions.get", s.getRegion)
	s.handle(http.MethodGet, "global/networks", "compute.networks.list", s.listNetworks)
	s.handle(http.MethodGet, "global/networks/{network}", "compute.networks.get", s.getNetwork)
	s.handle(http.MethodPost, "global/networks", "compute.networks.insert", s.insertNetwork)
	s.handle(http.MethodGet, "regions/{region}/subnetworks", "compute.subnetworks.list", s.listSubnetworks)
	s.handle(http.MethodGet, "regions/{region}/subnetworks/{subnetwork}", "compute.subnetworks.get", s.getSubnetwork)
	s.handle(http.MethodPost, "regions/{region}/subnetworks", "compute.subnetworks.insert", s.insertSubnetwork)
}

func (s *Server) zone(name string) *compute.Zone {
	return &compute.Zone{Kind: "compute#zone", Id: 2000 + uint64(slices.Index(s.cfg.Zones, name)), Name: name,
		Description: name, Status: "UP", Region: s.regionLink(s.cfg.Region), SelfLink: s.zoneLink(name),
		CreationTimestamp: "1969-12-31T16:00:00.000-08:00"}
}

func (s *Server) listZones(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	items, next, err := pageByName(s.cfg.Zones, func(z string) string { return z }, p)
	if err != nil {
		return nil, err
	}
	out := &compute.ZoneList{Kind: "compute#zoneList", Id: s.rel("zones"), SelfLink: s.link("zones"), NextPageToken: next}
	for _, z := range items {
		out.Items = append(out.Items, s.zone(z))
	}
	return out, nil
}

func (s *Server) getZone(c *call) (any, *apiError) { return s.zone(c.r.PathValue("zone")), nil }

func (s *Server) region() *compute.Region {
	r := &compute.Region{Kind: "compute#region", Id: 1000, Name: s.cfg.Region, Description: s.cfg.Region,
		Status: "UP", SelfLink: s.regionLink(s.cfg.Region), CreationTimestamp: "1969-12-31T16:00:00.000-08:00"}
	for _, z := range s.cfg.Zones {
		r.Zones = append(r.Zones, s.zoneLink(z))
	}
	return r
}

func (s *Server) listRegions(c *call) (any, *apiError) {
	if _, err := parseList(c.r); err != nil {
		return nil, err
	}
	return &compute.RegionList{Kind: "compute#regionList", Id: s.rel("regions"), SelfLink: s.link("regions"),
		Items: []*compute.Region{s.region()}}, nil
}

func (s *Server) getRegion(c *call) (any, *apiError) { return s.region(), nil }

func (s *Server) listNetworks(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	all := sortedValues(s.st.networks, func(n *compute.Network) string { return n.Name })
	for i, n := range all {
		cp := *n
		all[i] = &cp
	}
	s.mu.RUnlock()
	items, next, err := pageByName(all, func(n *compute.Network) string { return n.Name }, p)
	if err != nil {
		return nil, err
	}
	return &compute.NetworkList{Kind: "compute#networkList", Items: items, NextPageToken: next,
		SelfLink: s.link("global", "networks")}, nil
}

func (s *Server) getNetwork(c *call) (any, *apiError) {
	name := c.r.PathValue("network")
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.st.networks[name]
	if n == nil {
		return nil, errNotFound(s.rel("global", "networks", name))
	}
	cp := *n
	return &cp, nil
}

func (s *Server) insertNetwork(c *call) (any, *apiError) {
	var in compute.Network
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	if !validName(in.Name) {
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	}
	rel := s.rel("global", "networks", in.Name)
	s.mu.RLock()
	_, exists := s.st.networks[in.Name]
	check := in
	err := s.prepareNetworkIPv6(&check)
	s.mu.RUnlock()
	switch {
	case exists:
		return nil, errAlreadyExists(rel)
	case err != nil:
		return nil, err
	}
	return s.startOp(c, opSpec{opType: "insert", target: linkPrefix + rel, apply: func(now time.Time) *apiError {
		if _, ok := s.st.networks[in.Name]; ok {
			return errAlreadyExists(rel)
		}
		n := s.newNetwork(in.Name, in.AutoCreateSubnetworks, now)
		n.Description = in.Description
		n.EnableUlaInternalIpv6, n.InternalIpv6Range = in.EnableUlaInternalIpv6, in.InternalIpv6Range
		if err := s.prepareNetworkIPv6(n); err != nil {
			return err
		}
		s.st.networks[in.Name] = n
		if in.AutoCreateSubnetworks {
			// Auto mode: one subnetwork per region, named like the network; every auto-mode
			// network uses the same range, as in GCE.
			if _, ok := s.st.subnets[scopeKey{s.cfg.Region, in.Name}]; !ok {
				s.addSubnet(&compute.Subnetwork{Name: in.Name, Network: n.SelfLink, IpCidrRange: defaultSubnetRange}, s.cfg.Region, now)
			}
		}
		return nil
	}})
}

func (s *Server) listSubnetworks(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	all := sortedValues(s.st.subnets, func(n *compute.Subnetwork) string { return n.Name })
	s.mu.RUnlock()
	items, next, err := pageByName(all, func(n *compute.Subnetwork) string { return n.Name }, p)
	if err != nil {
		return nil, err
	}
	return &compute.SubnetworkList{Kind: "compute#subnetworkList", Items: items, NextPageToken: next,
		SelfLink: s.link("regions", s.cfg.Region, "subnetworks")}, nil
}

func (s *Server) getSubnetwork(c *call) (any, *apiError) {
	k := scopeKey{c.r.PathValue("region"), c.r.PathValue("subnetwork")}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := s.st.subnets[k]
	if sn == nil {
		return nil, errNotFound(s.rel("regions", k.region, "subnetworks", k.name))
	}
	cp := *sn
	return &cp, nil
}

func (s *Server) insertSubnetwork(c *call) (any, *apiError) {
	region := c.r.PathValue("region")
	var in compute.Subnetwork
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	if !validName(in.Name) {
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	}
	netName, ok := s.parseNetworkRef(in.Network)
	if !ok {
		return nil, errInvalidField("resource.network", in.Network, "Must be a network URL.")
	}
	rel := s.rel("regions", region, "subnetworks", in.Name)
	s.mu.RLock()
	_, exists := s.st.subnets[scopeKey{region, in.Name}]
	network := s.st.networks[netName]
	var err *apiError
	if network != nil {
		check := in
		err = s.prepareSubnetStack(&check, network)
	}
	s.mu.RUnlock()
	switch {
	case exists:
		return nil, errAlreadyExists(rel)
	case network == nil:
		return nil, errNotFound(s.rel("global", "networks", netName))
	case err != nil:
		return nil, err
	}
	return s.startOp(c, opSpec{opType: "insert", region: region, target: linkPrefix + rel, apply: func(now time.Time) *apiError {
		if _, ok := s.st.subnets[scopeKey{region, in.Name}]; ok {
			return errAlreadyExists(rel)
		}
		sn, network := in, s.st.networks[netName]
		if network == nil {
			return errNotFound(s.rel("global", "networks", netName))
		}
		if err := s.prepareSubnetStack(&sn, network); err != nil {
			return err
		}
		s.addSubnet(&sn, region, now)
		return nil
	}})
}

// sortedValues returns the values of m sorted by key.
func sortedValues[K comparable, V any](m map[K]V, name func(V) string) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b V) int {
		switch na, nb := name(a), name(b); {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	})
	return out
}
