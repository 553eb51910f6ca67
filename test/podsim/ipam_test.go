package podsim

import (
	"net/netip"
	"testing"
)

func TestIPAMAllocatesSequentiallyFromThirdAddress(t *testing.T) {
	a := newIPAM()
	for i, want := range []string{"10.64.1.2", "10.64.1.3", "10.64.1.4"} {
		key := string(rune('a' + i))
		got, err := a.allocate(key, "uid-"+key, "n1", "10.64.1.0/24", netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("pod %s: got %s, want %s", key, got, want)
		}
	}
	// Idempotent for the same pod.
	if got, _ := a.allocate("a", "uid-a", "n1", "10.64.1.0/24", netip.Addr{}); got.String() != "10.64.1.2" {
		t.Errorf("re-allocate: got %s, want 10.64.1.2", got)
	}
}

func TestIPAMDoesNotReuseReleasedAddressAtOnce(t *testing.T) {
	a := newIPAM()
	first, _ := a.allocate("a", "u1", "n1", "10.64.1.0/24", netip.Addr{})
	a.release("a")
	second, _ := a.allocate("b", "u2", "n1", "10.64.1.0/24", netip.Addr{})
	if second == first {
		t.Errorf("released %s was handed out again at once", first)
	}
}

func TestIPAMWrapsAndExhausts(t *testing.T) {
	a := newIPAM()
	// /29: .0 network, .1 gateway, .7 broadcast → .2-.6 usable.
	var got []string
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		ip, err := a.allocate(k, k, "n1", "10.64.9.0/29", netip.Addr{})
		if err != nil {
			t.Fatalf("pod %s: %v", k, err)
		}
		got = append(got, ip.String())
	}
	if got[0] != "10.64.9.2" || got[4] != "10.64.9.6" {
		t.Errorf("got %v, want .2 … .6", got)
	}
	if _, err := a.allocate("f", "f", "n1", "10.64.9.0/29", netip.Addr{}); err == nil {
		t.Error("allocation from a full pool succeeded")
	}
	a.release("c")
	ip, err := a.allocate("f", "f", "n1", "10.64.9.0/29", netip.Addr{})
	if err != nil || ip.String() != "10.64.9.4" {
		t.Errorf("after release: got %s, %v; want 10.64.9.4 (wrapped)", ip, err)
	}
}

func TestIPAMPodReplacedOrMoved(t *testing.T) {
	a := newIPAM()
	old, _ := a.allocate("ns/p", "u1", "n1", "10.64.1.0/24", netip.Addr{})
	replaced, _ := a.allocate("ns/p", "u2", "n1", "10.64.1.0/24", netip.Addr{})
	if replaced == old {
		t.Errorf("new UID kept the old IP %s", old)
	}
	if a.pools["n1"].used[old] != "" {
		t.Errorf("old IP %s still in use", old)
	}
	moved, _ := a.allocate("ns/p", "u2", "n2", "10.64.2.0/24", netip.Addr{})
	if !netip.MustParsePrefix("10.64.2.0/24").Contains(moved) {
		t.Errorf("moved pod got %s outside n2's CIDR", moved)
	}
	if len(a.pools["n1"].used) != 0 {
		t.Errorf("n1 still holds %v", a.pools["n1"].used)
	}
}

func TestIPAMKeepsWantedAddress(t *testing.T) {
	a := newIPAM()
	got, _ := a.allocate("a", "u", "n1", "10.64.1.0/24", netip.MustParseAddr("10.64.1.77"))
	if got.String() != "10.64.1.77" {
		t.Errorf("got %s, want the pod's existing 10.64.1.77", got)
	}
	// Taken or outside the range: the next free address instead.
	for _, want := range []string{"10.64.1.77", "10.64.2.5", "10.64.1.255", "10.64.1.1"} {
		got, _ := a.allocate(want, want, "n1", "10.64.1.0/24", netip.MustParseAddr(want))
		if got.String() == want {
			t.Errorf("wanted %s was handed out though taken or reserved", want)
		}
	}
}

func TestIPAMNodeCIDRChange(t *testing.T) {
	a := newIPAM()
	_, _ = a.allocate("a", "u", "n1", "10.64.1.0/24", netip.Addr{})
	got, _ := a.allocate("b", "u", "n1", "10.64.7.0/24", netip.Addr{})
	if got.String() != "10.64.7.2" {
		t.Errorf("got %s, want 10.64.7.2 from the new CIDR", got)
	}
	if _, ok := a.lookup("a"); ok {
		t.Error("pod of the old CIDR still has an address")
	}
}

func TestNewPoolRejects(t *testing.T) {
	for _, cidr := range []string{"fd00::/64", "10.0.0.0/31", "nonsense"} {
		if _, err := newPool(cidr); err == nil {
			t.Errorf("newPool(%q) succeeded", cidr)
		}
	}
}
