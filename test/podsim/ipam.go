package podsim

import (
	"fmt"
	"net/netip"
)

// ipam hands out pod IPs from each node's pod CIDR, like the host-local CNI plugin: the first
// address is the network and the second the gateway, so pods get .2 up to the last address
// before broadcast; allocation continues after the last address handed out (wrapping around),
// so a just-released IP is not reused at once. Not safe for concurrent use.
type ipam struct {
	pools map[string]*pool   // node name → pool
	pods  map[string]podAddr // pod key → its address
}

type pool struct {
	prefix      netip.Prefix
	first, last netip.Addr
	next        netip.Addr            // where the next search starts
	used        map[netip.Addr]string // IP → pod key
}

type podAddr struct {
	uid  string
	node string
	ip   netip.Addr
}

func newIPAM() *ipam {
	return &ipam{pools: map[string]*pool{}, pods: map[string]podAddr{}}
}

// newPool makes the pool for an IPv4 CIDR of at least 4 addresses.
func newPool(cidr string) (*pool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, err
	}
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s: want an IPv4 prefix of /30 or larger", cidr)
	}
	base := prefix.Addr().As4()
	size := uint32(1) << (32 - prefix.Bits())
	bcast := netip.AddrFrom4(u32to4(be32(base) + size - 1))
	first := prefix.Addr().Next().Next()
	return &pool{prefix: prefix, first: first, last: bcast.Prev(), next: first, used: map[netip.Addr]string{}}, nil
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func u32to4(v uint32) [4]byte {
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// pool returns node's pool for cidr, replacing it (and forgetting its pods) when the node's
// CIDR changed.
func (a *ipam) pool(node, cidr string) (*pool, error) {
	p := a.pools[node]
	if p != nil && p.prefix.String() == maskedString(cidr) {
		return p, nil
	}
	np, err := newPool(cidr)
	if err != nil {
		return nil, err
	}
	if p != nil {
		for _, key := range p.used {
			delete(a.pods, key)
		}
	}
	a.pools[node] = np
	return np, nil
}

// maskedString normalises a CIDR for comparison (unparsable input is returned as is).
func maskedString(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return cidr
	}
	return p.Masked().String()
}

// allocate returns the pod's IP on node, allocating one from cidr if the pod (identified by key
// and uid) has none there yet. A pod that moved node or was replaced under the same name (new
// uid) loses its old address first. want, if valid, inside the node's range and free, is taken
// instead of the next free address; it lets a restarted simulator keep the IPs it wrote before.
func (a *ipam) allocate(key, uid, node, cidr string, want netip.Addr) (netip.Addr, error) {
	if cur, ok := a.pods[key]; ok {
		if cur.uid == uid && cur.node == node {
			return cur.ip, nil
		}
		a.release(key)
	}
	p, err := a.pool(node, cidr)
	if err != nil {
		return netip.Addr{}, err
	}
	ip, ok := p.take(key, want)
	if !ok {
		return netip.Addr{}, fmt.Errorf("node %s: pod CIDR %s exhausted (%d pods)", node, p.prefix, len(p.used))
	}
	a.pods[key] = podAddr{uid: uid, node: node, ip: ip}
	return ip, nil
}

// release frees the pod's address, if any.
func (a *ipam) release(key string) {
	cur, ok := a.pods[key]
	if !ok {
		return
	}
	delete(a.pods, key)
	if p := a.pools[cur.node]; p != nil && p.used[cur.ip] == key {
		delete(p.used, cur.ip)
	}
}

// lookup returns the pod's address, if it has one.
func (a *ipam) lookup(key string) (podAddr, bool) {
	cur, ok := a.pods[key]
	return cur, ok
}

func (p *pool) take(key string, want netip.Addr) (netip.Addr, bool) {
	if want.IsValid() && want.Is4() && p.inRange(want) {
		if _, busy := p.used[want]; !busy {
			p.used[want] = key
			return want, true
		}
	}
	ip := p.next
	for {
		if _, busy := p.used[ip]; !busy {
			p.used[ip] = key
			p.next = p.after(ip)
			return ip, true
		}
		ip = p.after(ip)
		if ip == p.next {
			return netip.Addr{}, false
		}
	}
}

func (p *pool) inRange(ip netip.Addr) bool {
	return ip.Compare(p.first) >= 0 && ip.Compare(p.last) <= 0
}

func (p *pool) after(ip netip.Addr) netip.Addr {
	if ip == p.last {
		return p.first
	}
	return ip.Next()
}
