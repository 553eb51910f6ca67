package fakegce

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// InstanceSpec describes a VM for AddInstance: one network interface in Network/Subnetwork
// (empty = the default network and its subnetwork in the region) with primary IP IP (empty =
// allocated from the subnetwork) and alias IP ranges AliasCIDRs (pod ranges, e.g. "10.4.1.0/24").
//
// IPv6 (the subnetwork must be dual-stack or IPv6-only, see ipv6.go): IPv6 is the interface's
// internal IPv6 range, "ipv6Address/internalIpv6PrefixLength" (e.g. "fd20::4001:0:0/96", the
// node's /96 a GKE node's pod /112 comes from) or an address (length 96); AliasIPv6CIDRs are
// alias IPv6 ranges (aliasIpv6Ranges). The instance owns every address of both, so endpoints
// with those ipv6Addresses validate. StackType is the interface's stack type; empty:
// IPV4_IPV6 when IPv6 or AliasIPv6CIDRs is set, else IPV4_ONLY. IPV4_IPV6 or IPV6_ONLY without
// IPv6 gets a /96 allocated from the subnetwork.
type InstanceSpec struct {
	Name           string   `json:"name"`
	IP             string   `json:"ip,omitempty"`
	AliasCIDRs     []string `json:"aliasCIDRs,omitempty"`
	Network        string   `json:"network,omitempty"`
	Subnetwork     string   `json:"subnetwork,omitempty"`
	IPv6           string   `json:"ipv6,omitempty"`
	AliasIPv6CIDRs []string `json:"aliasIPv6CIDRs,omitempty"`
	StackType      string   `json:"stackType,omitempty"`
}

// instance is a stored VM. obj is never mutated after it is stored.
type instance struct {
	obj  *compute.Instance
	zone string
	nics []nic
}

// nic is a parsed network interface, used to validate endpoints.
type nic struct {
	network  string   // network name
	subnet   scopeKey // subnetwork
	stack    string   // stack type
	ip       netip.Addr
	aliases  []netip.Prefix
	ip6      netip.Prefix // internal IPv6 range (ipv6Address/internalIpv6PrefixLength); invalid without IPv6
	aliases6 []netip.Prefix
}

// owns reports whether ip is the interface's: for IPv4 its primary IP or inside one of its
// alias ranges, for IPv6 inside its internal IPv6 range or one of its alias IPv6 ranges.
func (n nic) owns(ip netip.Addr) bool {
	if ip.Is4() && ip == n.ip {
		return true
	}
	ranges := n.aliases
	if ip.Is6() {
		if n.ip6.Contains(ip) {
			return true
		}
		ranges = n.aliases6
	}
	for _, p := range ranges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// nicIn returns the instance's interface in network, if any.
func (in *instance) nicIn(network string) (nic, bool) {
	for _, n := range in.nics {
		if n.network == network {
			return n, true
		}
	}
	return nic{}, false
}

// AddInstance creates a VM at once, as instances.insert would once its operation is DONE.
func (s *Server) AddInstance(zone string, spec InstanceSpec) error {
	if !s.hasZone(zone) {
		return fmt.Errorf("fakegce: unknown zone %q", zone)
	}
	ni := &compute.NetworkInterface{Network: spec.Network, Subnetwork: spec.Subnetwork, NetworkIP: spec.IP, StackType: spec.StackType}
	for _, a := range spec.AliasCIDRs {
		ni.AliasIpRanges = append(ni.AliasIpRanges, &compute.AliasIpRange{IpCidrRange: a})
	}
	for _, a := range spec.AliasIPv6CIDRs {
		ni.AliasIpv6Ranges = append(ni.AliasIpv6Ranges, &compute.AliasIpRange{IpCidrRange: a})
	}
	if addr, bits, ok := strings.Cut(spec.IPv6, "/"); ok {
		n, err := strconv.Atoi(bits)
		if err != nil {
			return fmt.Errorf("fakegce: add instance %s/%s: IPv6 range %q: %v", zone, spec.Name, spec.IPv6, err)
		}
		ni.Ipv6Address, ni.InternalIpv6PrefixLength = addr, int64(n)
	} else {
		ni.Ipv6Address = spec.IPv6
	}
	if ni.StackType == "" && (spec.IPv6 != "" || len(spec.AliasIPv6CIDRs) > 0) {
		ni.StackType = StackDual
	}
	in := &compute.Instance{Name: spec.Name, NetworkInterfaces: []*compute.NetworkInterface{ni}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.addInstanceLocked(zone, in, time.Now()); err != nil {
		return fmt.Errorf("fakegce: add instance %s/%s: %s", zone, spec.Name, err.message)
	}
	return nil
}

// addInstanceLocked validates and stores an instance. Called with s.mu held for writing.
func (s *Server) addInstanceLocked(zone string, in *compute.Instance, now time.Time) *apiError {
	inst, err := s.buildInstance(zone, in, now)
	if err != nil {
		return err
	}
	k := instKey{zone, in.Name}
	if _, ok := s.st.instances[k]; ok {
		return errAlreadyExists(s.rel("zones", zone, "instances", in.Name))
	}
	s.st.instances[k] = inst
	return nil
}

// buildInstance validates an instance body and returns the stored form, allocating primary IPs
// that are not given. Called with s.mu held. The emulator does not check that a given primary
// IP lies inside its subnetwork, nor that alias ranges come from secondary ranges
// [leniency, so that local clusters can use their real node and pod addresses].
func (s *Server) buildInstance(zone string, in *compute.Instance, now time.Time) (*instance, *apiError) {
	if !validName(in.Name) {
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	}
	obj := *in
	obj.Kind, obj.Id, obj.CreationTimestamp, obj.Status = "compute#instance", newID(), timestamp(now), "RUNNING"
	obj.Zone, obj.SelfLink = s.zoneLink(zone), s.link("zones", zone, "instances", in.Name)
	if obj.MachineType == "" {
		obj.MachineType = "e2-medium"
	}
	if !strings.Contains(obj.MachineType, "/") {
		obj.MachineType = s.link("zones", zone, "machineTypes", obj.MachineType)
	}
	ifaces := in.NetworkInterfaces
	if len(ifaces) == 0 {
		ifaces = []*compute.NetworkInterface{{}}
	}
	inst := &instance{zone: zone}
	obj.NetworkInterfaces = nil
	for i, ni := range ifaces {
		n, out, err := s.buildNIC(i, ni)
		if err != nil {
			return nil, err
		}
		inst.nics = append(inst.nics, n)
		obj.NetworkInterfaces = append(obj.NetworkInterfaces, out)
	}
	inst.obj = &obj
	return inst, nil
}

// buildNIC validates interface i and resolves its network, subnetwork and addresses.
func (s *Server) buildNIC(i int, in *compute.NetworkInterface) (nic, *compute.NetworkInterface, *apiError) {
	field := fmt.Sprintf("resource.networkInterfaces[%d]", i)
	var n nic
	out := *in
	switch {
	case in.Subnetwork != "":
		region, name, ok := s.parseSubnetworkRef(in.Subnetwork)
		sn := s.st.subnets[scopeKey{region, name}]
		if !ok || sn == nil {
			return n, nil, errInvalidField(field+".subnetwork", in.Subnetwork, "The subnetwork does not exist.")
		}
		n.subnet = scopeKey{region, name}
		n.network, _ = s.parseNetworkRef(sn.Network)
		if in.Network != "" {
			if netName, ok := s.parseNetworkRef(in.Network); !ok || netName != n.network {
				return n, nil, errInvalidField(field+".network", in.Network, "The subnetwork does not belong to this network.")
			}
		}
	default:
		netName := "default"
		if in.Network != "" {
			var ok bool
			if netName, ok = s.parseNetworkRef(in.Network); !ok {
				return n, nil, errInvalidField(field+".network", in.Network, "Must be a network URL.")
			}
		}
		if s.st.networks[netName] == nil {
			return n, nil, errInvalidField(field+".network", in.Network, "The network does not exist.")
		}
		n.network = netName
		for k, sn := range s.st.subnets {
			if nn, _ := s.parseNetworkRef(sn.Network); nn == netName && k.region == s.cfg.Region {
				n.subnet = k
				break
			}
		}
		if n.subnet.name == "" {
			return n, nil, errInvalidField(field+".subnetwork", "", "The network has no subnetwork in region "+s.cfg.Region+".")
		}
	}
	var err *apiError
	if n.stack, err = nicStack(field, in, s.st.subnets[n.subnet]); err != nil {
		return n, nil, err
	}
	switch {
	case n.stack == StackIPv6Only && (in.NetworkIP != "" || len(in.AliasIpRanges) > 0):
		return n, nil, errInvalidField(field+".networkIP", in.NetworkIP, "An IPV6_ONLY network interface has no IPv4 address or alias IP range.")
	case n.stack == StackIPv6Only:
	case in.NetworkIP != "":
		ip, err := netip.ParseAddr(in.NetworkIP)
		if err != nil || !ip.Is4() {
			return n, nil, errInvalidField(field+".networkIP", in.NetworkIP, "Must be an IPv4 address.")
		}
		n.ip = ip
	default:
		n.ip = s.allocateIP(n.network, n.subnet)
	}
	if err := s.buildNICIPv6(field, in, &n, &out); err != nil {
		return n, nil, err
	}
	out.AliasIpRanges = nil
	for j, a := range in.AliasIpRanges {
		p, err := parseCIDROrIP(a.IpCidrRange)
		if err != nil {
			return n, nil, errInvalidField(fmt.Sprintf("%s.aliasIpRanges[%d].ipCidrRange", field, j), a.IpCidrRange,
				"fakegce needs an explicit IPv4 CIDR (or address) for alias ranges.")
		}
		n.aliases = append(n.aliases, p)
		out.AliasIpRanges = append(out.AliasIpRanges, &compute.AliasIpRange{IpCidrRange: p.String(), SubnetworkRangeName: a.SubnetworkRangeName})
	}
	out.Kind, out.Name, out.NetworkIP = "compute#networkInterface", fmt.Sprintf("nic%d", i), ""
	if n.ip.IsValid() {
		out.NetworkIP = n.ip.String()
	}
	out.Network = s.link("global", "networks", n.network)
	out.Subnetwork = s.link("regions", n.subnet.region, "subnetworks", n.subnet.name)
	out.StackType = n.stack
	return n, &out, nil
}

func parseCIDROrIP(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil && p.Addr().Is4() {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(v)
	if err != nil || !ip.Is4() {
		return netip.Prefix{}, fmt.Errorf("not an IPv4 CIDR or address: %q", v)
	}
	return netip.PrefixFrom(ip, 32), nil
}

// allocateIP returns the lowest free host address of the subnetwork (from .2 on; .1 is the
// gateway). Called with s.mu held.
func (s *Server) allocateIP(network string, subnet scopeKey) netip.Addr {
	used := map[netip.Addr]bool{}
	for _, in := range s.st.instances {
		for _, n := range in.nics {
			if n.network == network {
				used[n.ip] = true
			}
		}
	}
	if s.st.subnets[subnet].IpCidrRange == "" {
		return netip.Addr{}
	}
	p := netip.MustParsePrefix(s.st.subnets[subnet].IpCidrRange).Masked()
	ip := p.Addr().Next().Next()
	for p.Contains(ip) && used[ip] {
		ip = ip.Next()
	}
	return ip
}

func (s *Server) instanceRoutes() {
	s.handle(http.MethodGet, "zones/{zone}/instances", "compute.instances.list", s.listInstances)
	s.handle(http.MethodGet, "zones/{zone}/instances/{instance}", "compute.instances.get", s.getInstance)
	s.handle(http.MethodPost, "zones/{zone}/instances", "compute.instances.insert", s.insertInstance)
	s.handle(http.MethodDelete, "zones/{zone}/instances/{instance}", "compute.instances.delete", s.deleteInstance)
	s.handle(http.MethodGet, "aggregated/instances", "compute.instances.aggregatedList", s.aggregatedInstances)
}

func (s *Server) getInstance(c *call) (any, *apiError) {
	k := instKey{c.r.PathValue("zone"), c.r.PathValue("instance")}
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.st.instances[k]
	if in == nil {
		return nil, errNotFound(s.rel("zones", k.zone, "instances", k.name))
	}
	return in.obj, nil
}

// instancesOf returns the instances of zone ("" = all zones), sorted by (zone, name).
func (s *Server) instancesOf(zone string) []scoped[*compute.Instance] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []scoped[*compute.Instance]
	for k, in := range s.st.instances {
		if zone == "" || k.zone == zone {
			out = append(out, scoped[*compute.Instance]{scope: "zones/" + k.zone, name: k.name, v: in.obj})
		}
	}
	sortScoped(out)
	return out
}

func (s *Server) listInstances(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	zone := c.r.PathValue("zone")
	items, next, err := pageByName(s.instancesOf(zone), func(i scoped[*compute.Instance]) string { return i.name }, p)
	if err != nil {
		return nil, err
	}
	out := &compute.InstanceList{Kind: "compute#instanceList", NextPageToken: next, SelfLink: s.link("zones", zone, "instances")}
	for _, i := range items {
		out.Items = append(out.Items, i.v)
	}
	return out, nil
}

func (s *Server) aggregatedInstances(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	page, next, err := pageScoped(s.instancesOf(""), p)
	if err != nil {
		return nil, err
	}
	out := &compute.InstanceAggregatedList{Kind: "compute#instanceAggregatedList", NextPageToken: next,
		SelfLink: s.link("aggregated", "instances"), Items: map[string]compute.InstancesScopedList{}}
	for _, i := range page {
		l := out.Items[i.scope]
		l.Instances = append(l.Instances, i.v)
		out.Items[i.scope] = l
	}
	for _, z := range s.cfg.Zones {
		if sc := "zones/" + z; len(out.Items[sc].Instances) == 0 {
			out.Items[sc] = compute.InstancesScopedList{Warning: &compute.InstancesScopedListWarning{
				Code: "NO_RESULTS_ON_PAGE", Message: noResultsMessage(sc),
				Data: []*compute.InstancesScopedListWarningData{{Key: "scope", Value: sc}}}}
		}
	}
	return out, nil
}

func (s *Server) insertInstance(c *call) (any, *apiError) {
	zone := c.r.PathValue("zone")
	var in compute.Instance
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	rel := s.rel("zones", zone, "instances", in.Name)
	s.mu.RLock()
	_, err := s.buildInstance(zone, &in, time.Now())
	_, exists := s.st.instances[instKey{zone, in.Name}]
	s.mu.RUnlock()
	switch {
	case err != nil:
		return nil, err
	case exists:
		return nil, errAlreadyExists(rel)
	}
	return s.startOp(c, opSpec{opType: "insert", zone: zone, target: linkPrefix + rel, apply: func(now time.Time) *apiError {
		return s.addInstanceLocked(zone, &in, now)
	}})
}

// deleteInstance deletes a VM. Its endpoints are removed from the NEGs of its zone when the
// operation completes, as GCE detaches the endpoints of a deleted VM [unverified against real
// GCE].
func (s *Server) deleteInstance(c *call) (any, *apiError) {
	k := instKey{c.r.PathValue("zone"), c.r.PathValue("instance")}
	rel := s.rel("zones", k.zone, "instances", k.name)
	s.mu.RLock()
	in := s.st.instances[k]
	s.mu.RUnlock()
	if in == nil {
		return nil, errNotFound(rel)
	}
	return s.startOp(c, opSpec{opType: "delete", zone: k.zone, target: linkPrefix + rel, targetID: in.obj.Id,
		apply: func(time.Time) *apiError {
			if s.st.instances[k] == nil {
				return errNotFound(rel)
			}
			delete(s.st.instances, k)
			for nk, n := range s.st.negs {
				if nk.zone == k.zone {
					n.removeInstance(k.name)
				}
			}
			return nil
		}})
}
