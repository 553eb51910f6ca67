package podsim

import (
	"fmt"
	"net/netip"
)

// Dual-stack address plan
//
// A dual-stack node has, besides its IPv4 pod CIDR 10.A.B.0/24 and IP, an IPv6 InternalIP that
// starts its Compute Engine instance's internal IPv6 range (a /96, as GCE gives VMs and GKE
// nodes) and an IPv6 pod CIDR inside that range (a /112, as GKE gives pods):
//
//	node IPv6       fd20::<AB>:0:0        (range fd20::<AB>:0:0/96, <AB> = A·256+B in hex)
//	IPv6 pod CIDR   fd20::<AB>:<A>:0/112
//	pod 10.A.B.C    fd20::<AB>:<A>:<BC>   (its last three bytes are A, B, C)
//
// e.g. node 1 (pod CIDR 10.64.1.0/24) gets fd20::4001:0:0 and fd20::4001:40:0/112, and pod
// 10.64.1.5 gets fd20::4001:40:105. fd20::/64 is fakegce's dual-stack default subnetwork
// (fakegce.DefaultSubnetIPv6Range). A pod's IPv6 address is its IPv4 address's last three bytes
// in its node's IPv6 pod CIDR, so fakegce.LoopbackFor maps both to the same 127.A.B.C: one
// listener serves the pod on both families.

// DualStack returns n with IPv6 and PodCIDRv6 set by the dual-stack address plan above, unless
// they are set already. Its IPv4 pod CIDR must lie in 10.0.0.0/8 and be a /16 or smaller.
func (n NodeSpec) DualStack() (NodeSpec, error) {
	if n.IPv6 != "" || n.PodCIDRv6 != "" {
		return n, nil
	}
	p, err := netip.ParsePrefix(n.PodCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Addr().As4()[0] != 10 {
		return n, fmt.Errorf("node %s: pod CIDR %q: the dual-stack plan needs an IPv4 prefix of /16 or smaller in 10.0.0.0/8", n.Name, n.PodCIDR)
	}
	b := p.Masked().Addr().As4()
	ab := uint16(b[1])<<8 | uint16(b[2])
	n.IPv6 = fmt.Sprintf("fd20::%x:0:0", ab)
	n.PodCIDRv6 = fmt.Sprintf("fd20::%x:%x:0/112", ab, b[1])
	return n, nil
}

// podIPv6 is the IPv6 address of the pod with IPv4 address ip: the last three bytes of ip in
// the IPv6 pod CIDR.
func podIPv6(cidr netip.Prefix, ip netip.Addr) netip.Addr {
	b, v4 := cidr.Addr().As16(), ip.As4()
	b[13], b[14], b[15] = v4[1], v4[2], v4[3]
	return netip.AddrFrom16(b)
}

// validateIPv6 checks a node's IPv6 fields: both or neither; IPv6 an IPv6 address; PodCIDRv6 an
// IPv6 prefix in fd00::/8 (so fakegce.LoopbackFor reaches its pods) that holds the IPv6 address
// of every address of the IPv4 pod CIDR (see podIPv6).
func (n NodeSpec) validateIPv6(v4 netip.Prefix) error {
	if n.IPv6 == "" && n.PodCIDRv6 == "" {
		return nil
	}
	ip, err := netip.ParseAddr(n.IPv6)
	if err != nil || !ip.Is6() || ip.Is4In6() || ip.IsLoopback() {
		return fmt.Errorf("node %s: IPv6 %q must be a routable IPv6 address (dual-stack nodes need IPv6 and PodCIDRv6)", n.Name, n.IPv6)
	}
	p, err := netip.ParsePrefix(n.PodCIDRv6)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().As16()[0] != 0xfd {
		return fmt.Errorf("node %s: IPv6 pod CIDR %q must be an IPv6 prefix in fd00::/8", n.Name, n.PodCIDRv6)
	}
	p, v4 = p.Masked(), v4.Masked()
	last := netip.AddrFrom4(u32to4(be32(v4.Addr().As4()) + uint32(1)<<(32-v4.Bits()) - 1))
	if !p.Contains(podIPv6(p, v4.Addr())) || !p.Contains(podIPv6(p, last)) {
		return fmt.Errorf("node %s: IPv6 pod CIDR %s does not hold the IPv6 addresses of pod CIDR %s (their last three bytes are the IPv4 addresses'; see DualStack)", n.Name, p, v4)
	}
	return nil
}

// nodeIPv6Range is the instance's internal IPv6 range: the /96 starting at the node's IPv6.
func (n NodeSpec) nodeIPv6Range() netip.Prefix {
	return netip.PrefixFrom(netip.MustParseAddr(n.IPv6), 96).Masked()
}
