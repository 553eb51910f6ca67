package fakegce

import (
	"fmt"
	"net/netip"
	"slices"

	compute "google.golang.org/api/compute/v1"
)

// IPv6 model
//
// Stack types (networkInterfaces[].stackType, subnetworks' stackType): IPV4_ONLY (the default of
// both, as documented), IPV4_IPV6 (dual-stack) and IPV6_ONLY. Only internal IPv6
// (ipv6AccessType INTERNAL, ULA addresses from fd20::/20) is emulated:
//
//   - A network gets an internal IPv6 range when it is inserted with enableUlaInternalIpv6: the
//     given internalIpv6Range (a /48 inside fd20::/20) or one allocated (fd20:0:K::/48).
//   - A dual-stack or IPv6-only subnetwork needs a custom-mode network (documented: "dual-stack
//     support is only available with subnets in a custom-mode VPC network") with an internal
//     IPv6 range ("the VPC network internal IPv6 range must be enabled"), and ipv6AccessType
//     INTERNAL (EXTERNAL is not emulated; requiring the field is [unverified], gcloud requires
//     --ipv6-access-type). Its internalIpv6Prefix is the given /64 inside the network's /48 or
//     the next free one. An IPV6_ONLY subnetwork has no ipCidrRange.
//   - A network interface of stack type IPV4_IPV6 needs an IPV4_IPV6 subnetwork; IPV6_ONLY needs
//     an IPV6_ONLY or IPV4_IPV6 one [unverified for IPV4_IPV6]; IPV4_ONLY refuses an IPV6_ONLY
//     subnetwork (it has no IPv4 range). An interface with IPv6 owns its internal IPv6 range,
//     ipv6Address/internalIpv6PrefixLength (default and usual length 96, as GCE gives VMs and
//     GKE nodes a /96; 64 to 128 accepted [leniency]); without ipv6Address the next free /96 of
//     the subnetwork is allocated. aliasIpv6Ranges are owned too. As for IPv4, the emulator does
//     not check that a given range lies inside the subnetwork's [leniency, so local clusters can
//     choose their addresses].
//
// Config.DefaultStackType makes the "default" network custom mode with internal IPv6 range
// DefaultNetworkIPv6Range and its "default" subnetwork of that stack type with internal IPv6
// range DefaultSubnetIPv6Range — what a Terraform-made network named "default" would be.

// Stack types.
const (
	StackIPv4Only = "IPV4_ONLY"
	StackDual     = "IPV4_IPV6"
	StackIPv6Only = "IPV6_ONLY"
)

// Internal IPv6 ranges of the default network and subnetwork when Config.DefaultStackType is
// IPV4_IPV6 or IPV6_ONLY.
const (
	DefaultNetworkIPv6Range = "fd20::/48"
	DefaultSubnetIPv6Range  = "fd20::/64"
)

// ulaRange is where GCE allocates internal IPv6 ranges of VPC networks (documented).
var ulaRange = netip.MustParsePrefix("fd20::/20")

// defaultNICIPv6Bits is the prefix length of a VM interface's internal IPv6 range.
const defaultNICIPv6Bits = 96

func validStack(st string) bool {
	return st == StackIPv4Only || st == StackDual || st == StackIPv6Only
}

// hasIPv6 reports whether a stack type includes IPv6.
func hasIPv6(stack string) bool { return stack == StackDual || stack == StackIPv6Only }

// stackOf returns a subnetwork's stack type (IPV4_ONLY when unset).
func stackOf(sn *compute.Subnetwork) string {
	if sn == nil || sn.StackType == "" {
		return StackIPv4Only
	}
	return sn.StackType
}

// parseIPv6Prefix parses an IPv6 CIDR (not an IPv4-mapped one) and masks it.
func parseIPv6Prefix(v string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// parseIPv6 parses an IPv6 address without zone (not an IPv4-mapped one).
func parseIPv6(v string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// nthPrefix returns the k-th prefix of length bits inside p (k from 0), and whether it exists.
// bits - p.Bits() must be at most 63.
func nthPrefix(p netip.Prefix, bits int, k uint64) (netip.Prefix, bool) {
	span := bits - p.Bits()
	if span < 0 || span > 63 || k >= 1<<span {
		return netip.Prefix{}, false
	}
	b := p.Addr().As16()
	// Add k << (128-bits) to the 128-bit address, big-endian, with carry.
	shift := 128 - bits
	var add [16]byte
	for i := 0; i < 64 && k>>i != 0; i++ {
		if k>>i&1 == 1 {
			bit := shift + i
			add[15-bit/8] |= 1 << (bit % 8)
		}
	}
	carry := 0
	for i := 15; i >= 0; i-- {
		sum := int(b[i]) + int(add[i]) + carry
		b[i], carry = byte(sum), sum>>8
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), bits), true
}

// prepareNetworkIPv6 validates and completes a network's internal IPv6 settings. Called with
// s.mu held.
func (s *Server) prepareNetworkIPv6(n *compute.Network) *apiError {
	if n.InternalIpv6Range != "" && !n.EnableUlaInternalIpv6 {
		return errInvalidField("resource.internalIpv6Range", n.InternalIpv6Range, "internalIpv6Range can only be set with enableUlaInternalIpv6.")
	}
	if !n.EnableUlaInternalIpv6 {
		return nil
	}
	if n.InternalIpv6Range != "" {
		p, ok := parseIPv6Prefix(n.InternalIpv6Range)
		if !ok || p.Bits() != 48 || !ulaRange.Contains(p.Addr()) {
			return errInvalidField("resource.internalIpv6Range", n.InternalIpv6Range, "Must be a /48 range inside fd20::/20.")
		}
		for _, o := range s.st.networks {
			if o.InternalIpv6Range == p.String() && o.Name != n.Name {
				return errInvalidField("resource.internalIpv6Range", n.InternalIpv6Range, "The range is used by network "+o.Name+".")
			}
		}
		n.InternalIpv6Range = p.String()
		return nil
	}
	used := map[string]bool{}
	for _, o := range s.st.networks {
		used[o.InternalIpv6Range] = true
	}
	for k := uint64(0); ; k++ { // fd20:0:K::/48
		p, _ := nthPrefix(netip.MustParsePrefix("fd20::/32"), 48, k)
		if !used[p.String()] {
			n.InternalIpv6Range = p.String()
			return nil
		}
	}
}

// prepareSubnetStack validates a subnetwork's stack settings against its network and fills in
// the defaults (stackType IPV4_ONLY; internalIpv6Prefix the next free /64 of the network's
// range). Called with s.mu held.
func (s *Server) prepareSubnetStack(sn *compute.Subnetwork, network *compute.Network) *apiError {
	if sn.StackType == "" {
		sn.StackType = StackIPv4Only
	}
	switch st := sn.StackType; {
	case !validStack(st):
		return errInvalidField("resource.stackType", st, "Must be IPV4_ONLY, IPV4_IPV6 or IPV6_ONLY.")
	case st == StackIPv6Only && sn.IpCidrRange != "":
		return errInvalidField("resource.ipCidrRange", sn.IpCidrRange, "An IPV6_ONLY subnetwork has no IPv4 range.")
	case st != StackIPv6Only:
		if p, err := netip.ParsePrefix(sn.IpCidrRange); err != nil || !p.Addr().Is4() {
			return errInvalidField("resource.ipCidrRange", sn.IpCidrRange, "Must be an IPv4 CIDR range.")
		}
	}
	if !hasIPv6(sn.StackType) {
		if sn.Ipv6AccessType != "" || sn.InternalIpv6Prefix != "" {
			return errInvalidField("resource.stackType", sn.StackType, "IPv6 settings need stack type IPV4_IPV6 or IPV6_ONLY.")
		}
		return nil
	}
	switch {
	case network.AutoCreateSubnetworks:
		return errInvalidField("resource.stackType", sn.StackType, "Dual-stack and IPv6-only subnetworks are only supported in custom mode VPC networks; network "+network.Name+" is in auto mode.")
	case sn.Ipv6AccessType == "":
		return errInvalidField("resource.ipv6AccessType", "", "ipv6AccessType (INTERNAL or EXTERNAL) must be set for stack type "+sn.StackType+" (fakegce; real GCE [unverified]).")
	case sn.Ipv6AccessType != "INTERNAL":
		return errInvalidField("resource.ipv6AccessType", sn.Ipv6AccessType, "fakegce emulates internal IPv6 (INTERNAL) only.")
	case !network.EnableUlaInternalIpv6:
		return errInvalidField("resource.ipv6AccessType", sn.Ipv6AccessType, "Internal IPv6 needs the network's internal IPv6 range: network "+network.Name+" has no enableUlaInternalIpv6.")
	}
	netRange := netip.MustParsePrefix(network.InternalIpv6Range)
	used := map[netip.Prefix]bool{}
	for _, o := range s.st.subnets {
		if o.Name != sn.Name && o.InternalIpv6Prefix != "" {
			used[netip.MustParsePrefix(o.InternalIpv6Prefix)] = true
		}
	}
	if sn.InternalIpv6Prefix != "" {
		p, ok := parseIPv6Prefix(sn.InternalIpv6Prefix)
		switch {
		case !ok || p.Bits() != 64 || !netRange.Contains(p.Addr()):
			return errInvalidField("resource.internalIpv6Prefix", sn.InternalIpv6Prefix, "Must be a /64 inside the network's internal IPv6 range "+netRange.String()+".")
		case used[p]:
			return errInvalidField("resource.internalIpv6Prefix", sn.InternalIpv6Prefix, "The range is used by another subnetwork.")
		}
		sn.InternalIpv6Prefix = p.String()
		return nil
	}
	for k := uint64(0); ; k++ {
		p, ok := nthPrefix(netRange, 64, k)
		if !ok {
			return errInvalidField("resource.internalIpv6Prefix", "", "The network's internal IPv6 range is exhausted.")
		}
		if !used[p] {
			sn.InternalIpv6Prefix = p.String()
			return nil
		}
	}
}

// nicStack resolves an interface's stack type against its subnetwork's. Called with s.mu held.
func nicStack(field string, in *compute.NetworkInterface, sn *compute.Subnetwork) (string, *apiError) {
	stack := in.StackType
	if stack == "" {
		stack = StackIPv4Only // documented default
	}
	snStack := stackOf(sn)
	ok := true
	switch stack {
	case StackIPv4Only:
		ok = snStack != StackIPv6Only
	case StackDual:
		ok = snStack == StackDual
	case StackIPv6Only:
		ok = snStack != StackIPv4Only
	default:
		return "", errInvalidField(field+".stackType", stack, "Must be IPV4_ONLY, IPV4_IPV6 or IPV6_ONLY.")
	}
	if !ok {
		return "", errInvalidField(field+".stackType", stack, fmt.Sprintf(
			"A network interface of stack type %s can't use subnetwork %s of stack type %s.", stack, sn.Name, snStack))
	}
	return stack, nil
}

// buildNICIPv6 resolves an interface's IPv6 addresses (its internal IPv6 range and alias IPv6
// ranges) into n and out. Called with s.mu held, after n.subnet and n.stack are set.
func (s *Server) buildNICIPv6(field string, in *compute.NetworkInterface, n *nic, out *compute.NetworkInterface) *apiError {
	out.Ipv6Address, out.InternalIpv6PrefixLength, out.AliasIpv6Ranges, out.Ipv6AccessType = "", 0, nil, ""
	if !hasIPv6(n.stack) {
		if in.Ipv6Address != "" || len(in.AliasIpv6Ranges) > 0 || in.InternalIpv6PrefixLength != 0 {
			return errInvalidField(field+".ipv6Address", in.Ipv6Address, "IPv6 addresses need stack type IPV4_IPV6 or IPV6_ONLY.")
		}
		return nil
	}
	bits := int(in.InternalIpv6PrefixLength)
	if bits == 0 {
		bits = defaultNICIPv6Bits
	}
	if bits < 64 || bits > 128 {
		return errInvalidField(field+".internalIpv6PrefixLength", bits, "Must be between 64 and 128 (VMs get 96).")
	}
	if in.Ipv6Address != "" {
		a, ok := parseIPv6(in.Ipv6Address)
		if !ok {
			return errInvalidField(field+".ipv6Address", in.Ipv6Address, "Must be an IPv6 address.")
		}
		n.ip6 = netip.PrefixFrom(a, bits).Masked()
		out.Ipv6Address = a.String()
	} else {
		p, ok := s.allocateIPv6(n.subnet, bits)
		if !ok {
			return errInvalidField(field+".ipv6Address", "", "The subnetwork's internal IPv6 range is exhausted.")
		}
		n.ip6 = p
		out.Ipv6Address = p.Addr().String()
	}
	out.InternalIpv6PrefixLength = int64(bits)
	out.Ipv6AccessType = s.st.subnets[n.subnet].Ipv6AccessType
	for j, a := range in.AliasIpv6Ranges {
		if a == nil {
			return errInvalidField(fmt.Sprintf("%s.aliasIpv6Ranges[%d]", field, j), "null", "Alias range must not be null.")
		}
		p, ok := parseIPv6Prefix(a.IpCidrRange)
		if !ok {
			return errInvalidField(fmt.Sprintf("%s.aliasIpv6Ranges[%d].ipCidrRange", field, j), a.IpCidrRange,
				"fakegce needs an explicit IPv6 CIDR for alias IPv6 ranges.")
		}
		n.aliases6 = append(n.aliases6, p)
		out.AliasIpv6Ranges = append(out.AliasIpv6Ranges, &compute.AliasIpRange{IpCidrRange: p.String(), SubnetworkRangeName: a.SubnetworkRangeName})
	}
	return nil
}

// allocateIPv6 returns the first range of length bits in the subnetwork's internal IPv6 range
// (from the second one on) that no interface uses. Called with s.mu held.
func (s *Server) allocateIPv6(subnet scopeKey, bits int) (netip.Prefix, bool) {
	sn := s.st.subnets[subnet]
	if sn == nil || sn.InternalIpv6Prefix == "" {
		return netip.Prefix{}, false
	}
	base := netip.MustParsePrefix(sn.InternalIpv6Prefix)
	var used []netip.Prefix
	for _, in := range s.st.instances {
		for _, n := range in.nics {
			if n.ip6.IsValid() {
				used = append(used, n.ip6)
			}
		}
	}
	for k := uint64(1); ; k++ {
		p, ok := nthPrefix(base, bits, k)
		if !ok {
			return netip.Prefix{}, false
		}
		if !slices.ContainsFunc(used, p.Overlaps) {
			return p, true
		}
	}
}

// ipFamilies returns which address families a backend service sends traffic to and
// health-checks, from its ipAddressSelectionPolicy (documented): IPV4_ONLY (the default, also
// when unset or IP_ADDRESS_SELECTION_POLICY_UNSPECIFIED) checks IPv4 only, IPV6_ONLY IPv6 only,
// PREFER_IPV6 both (traffic prefers a healthy IPv6 address).
func ipFamilies(policy string) (v4, v6 bool) {
	switch policy {
	case "IPV6_ONLY":
		return false, true
	case "PREFER_IPV6":
		return true, true
	}
	return true, false
}

var ipSelectionPolicies = []string{"IPV4_ONLY", "IPV6_ONLY", "PREFER_IPV6", "IP_ADDRESS_SELECTION_POLICY_UNSPECIFIED"}
