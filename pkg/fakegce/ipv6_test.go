package fakegce_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func ep6(instance, ip, ipv6 string, port int64) *compute.NetworkEndpoint {
	return &compute.NetworkEndpoint{Instance: instance, IpAddress: ip, Ipv6Address: ipv6, Port: port}
}

func TestDualStackDefaultNetwork(t *testing.T) {
	for _, tc := range []struct {
		stack, ipv4Range string
	}{
		{"", "10.128.0.0/20"},
		{fakegce.StackDual, "10.128.0.0/20"},
		{fakegce.StackIPv6Only, ""},
	} {
		t.Run("stack="+tc.stack, func(t *testing.T) {
			e := newEnv(t, fakegce.Config{DefaultStackType: tc.stack})
			n, err := e.svc.Networks.Get(project, "default").Do()
			if err != nil {
				t.Fatal(err)
			}
			sn, err := e.svc.Subnetworks.Get(project, region, "default").Do()
			if err != nil {
				t.Fatal(err)
			}
			if tc.stack == "" {
				if !n.AutoCreateSubnetworks || n.EnableUlaInternalIpv6 || sn.StackType != "IPV4_ONLY" || sn.InternalIpv6Prefix != "" || sn.IpCidrRange != tc.ipv4Range {
					t.Errorf("IPv4 default: network %+v subnet %+v", n, sn)
				}
				return
			}
			if n.AutoCreateSubnetworks || !n.EnableUlaInternalIpv6 || n.InternalIpv6Range != fakegce.DefaultNetworkIPv6Range {
				t.Errorf("network: auto %v, ULA %v %q", n.AutoCreateSubnetworks, n.EnableUlaInternalIpv6, n.InternalIpv6Range)
			}
			if sn.StackType != tc.stack || sn.Ipv6AccessType != "INTERNAL" || sn.InternalIpv6Prefix != fakegce.DefaultSubnetIPv6Range || sn.IpCidrRange != tc.ipv4Range {
				t.Errorf("subnet: %s %s %s %q", sn.StackType, sn.Ipv6AccessType, sn.InternalIpv6Prefix, sn.IpCidrRange)
			}
		})
	}
	if err := (fakegce.Config{DefaultStackType: "IPV5"}).Validate(); err == nil {
		t.Error("stack type IPV5 accepted")
	}
}

func TestIPv6NetworksAndSubnetworks(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "ula", EnableUlaInternalIpv6: true, InternalIpv6Range: "fd20:abc:1::/48",
		ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "ula-auto", EnableUlaInternalIpv6: true, ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "plain", ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	if n, _ := e.svc.Networks.Get(project, "ula-auto").Do(); n.InternalIpv6Range != "fd20::/48" {
		t.Errorf("allocated network range %q, want fd20::/48", n.InternalIpv6Range)
	}
	netTests := []struct{ name, rng, message string }{
		{"range without ULA", "fd20:abc:2::/48", "enableUlaInternalIpv6"},
		{"not a /48", "fd20:abc:2::/56", "/48"},
		{"outside fd20::/20", "fd30:abc:2::/48", "fd20::/20"},
		{"taken", "fd20:abc:1::/48", "used by network ula"},
	}
	for _, tc := range netTests {
		t.Run("network/"+tc.name, func(t *testing.T) {
			_, err := e.svc.Networks.Insert(project, &compute.Network{Name: "bad", EnableUlaInternalIpv6: tc.name != "range without ULA",
				InternalIpv6Range: tc.rng}).Do()
			if ge := wantAPIError(t, err, 400, "invalid"); !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q lacks %q", ge.Message, tc.message)
			}
		})
	}
	sub := func(name, network, stack, access, v4, v6 string) *compute.Subnetwork {
		return &compute.Subnetwork{Name: name, Network: "global/networks/" + network, StackType: stack, Ipv6AccessType: access,
			IpCidrRange: v4, InternalIpv6Prefix: v6}
	}
	subTests := []struct {
		name    string
		sn      *compute.Subnetwork
		message string
	}{
		{"dual-stack in auto mode", sub("s1", "default", "IPV4_IPV6", "INTERNAL", "10.10.0.0/20", ""), "custom mode"},
		{"dual-stack without ULA", sub("s1", "plain", "IPV4_IPV6", "INTERNAL", "10.10.0.0/20", ""), "enableUlaInternalIpv6"},
		{"no access type", sub("s1", "ula", "IPV4_IPV6", "", "10.10.0.0/20", ""), "ipv6AccessType"},
		{"external", sub("s1", "ula", "IPV4_IPV6", "EXTERNAL", "10.10.0.0/20", ""), "INTERNAL"},
		{"unknown stack", sub("s1", "ula", "IPV5", "INTERNAL", "10.10.0.0/20", ""), "stackType"},
		{"IPv6-only with IPv4 range", sub("s1", "ula", "IPV6_ONLY", "INTERNAL", "10.10.0.0/20", ""), "no IPv4 range"},
		{"dual-stack without IPv4 range", sub("s1", "ula", "IPV4_IPV6", "INTERNAL", "", ""), "IPv4 CIDR"},
		{"IPv6 range as IPv4 range", sub("s1", "ula", "IPV4_ONLY", "", "fd20::/64", ""), "IPv4 CIDR"},
		{"IPv6 settings on IPV4_ONLY", sub("s1", "ula", "IPV4_ONLY", "INTERNAL", "10.10.0.0/20", ""), "IPv6 settings"},
		{"prefix outside the network's", sub("s1", "ula", "IPV4_IPV6", "INTERNAL", "10.10.0.0/20", "fd20:abc:2::/64"), "inside the network"},
		{"prefix not a /64", sub("s1", "ula", "IPV4_IPV6", "INTERNAL", "10.10.0.0/20", "fd20:abc:1::/60"), "/64"},
	}
	for _, tc := range subTests {
		t.Run("subnetwork/"+tc.name, func(t *testing.T) {
			_, err := e.svc.Subnetworks.Insert(project, region, tc.sn).Do()
			if ge := wantAPIError(t, err, 400, "invalid"); !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q lacks %q", ge.Message, tc.message)
			}
		})
	}
	e.must(e.svc.Subnetworks.Insert(project, region, sub("dual", "ula", "IPV4_IPV6", "INTERNAL", "10.10.0.0/20", "")).Do())
	e.must(e.svc.Subnetworks.Insert(project, region, sub("v6", "ula", "IPV6_ONLY", "INTERNAL", "", "fd20:abc:1:7::/64")).Do())
	_, err := e.svc.Subnetworks.Insert(project, region, sub("v6b", "ula", "IPV6_ONLY", "INTERNAL", "", "fd20:abc:1:7::/64")).Do()
	wantAPIError(t, err, 400, "invalid") // range taken
	for name, want := range map[string]string{"dual": "IPV4_IPV6 fd20:abc:1::/64 10.10.0.0/20", "v6": "IPV6_ONLY fd20:abc:1:7::/64 "} {
		sn, err := e.svc.Subnetworks.Get(project, region, name).Do()
		if err != nil {
			t.Fatal(err)
		}
		if got := sn.StackType + " " + sn.InternalIpv6Prefix + " " + sn.IpCidrRange; got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestIPv6Instances(t *testing.T) {
	e := newEnv(t, fakegce.Config{DefaultStackType: fakegce.StackDual})
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "ula", EnableUlaInternalIpv6: true, ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	e.must(e.svc.Subnetworks.Insert(project, region, &compute.Subnetwork{Name: "v6", Network: "global/networks/ula", StackType: "IPV6_ONLY", Ipv6AccessType: "INTERNAL"}).Do())
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "legacy", AutoCreateSubnetworks: true}).Do())
	nic := func(subnet, stack, ip, ipv6 string) *compute.Instance {
		return &compute.Instance{Name: "vm", NetworkInterfaces: []*compute.NetworkInterface{{
			Subnetwork: "regions/" + region + "/subnetworks/" + subnet, StackType: stack, NetworkIP: ip, Ipv6Address: ipv6}}}
	}
	for _, tc := range []struct {
		name    string
		in      *compute.Instance
		message string
	}{
		{"dual-stack NIC in IPv4 subnet", nic("legacy", "IPV4_IPV6", "", ""), "stack type IPV4_ONLY"},
		{"IPv4 NIC in IPv6-only subnet", nic("v6", "", "", ""), "stack type IPV6_ONLY"},
		{"IPv6 address on IPv4 NIC", nic("default", "IPV4_ONLY", "", "fd20::1:0:0"), "IPv6 addresses need"},
		{"IPv4 address on IPv6-only NIC", nic("v6", "IPV6_ONLY", "10.1.2.3", ""), "no IPv4 address"},
		{"bad IPv6 address", nic("default", "IPV4_IPV6", "", "10.1.2.3"), "IPv6 address"},
		{"unknown stack", nic("default", "IPV5", "", ""), "stackType"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Instances.Insert(project, zoneA, tc.in).Do()
			if ge := wantAPIError(t, err, 400, "invalid"); !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q lacks %q", ge.Message, tc.message)
			}
		})
	}
	if err := e.s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "bad", IPv6: "fd20::1:0:0/abc"}); err == nil {
		t.Error("AddInstance accepted IPv6 range fd20::1:0:0/abc")
	}
	e.must(e.svc.Instances.Insert(project, zoneA, nic("default", "IPV4_IPV6", "", "")).Do())
	e.must(e.svc.Instances.Insert(project, zoneB, &compute.Instance{Name: "vm6", NetworkInterfaces: []*compute.NetworkInterface{{
		Subnetwork: "regions/" + region + "/subnetworks/v6", StackType: "IPV6_ONLY"}}}).Do())
	if err := e.s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "node-1", IP: "10.1.0.1", AliasCIDRs: []string{"10.64.1.0/24"},
		IPv6: "fd20::4001:0:0/96", AliasIPv6CIDRs: []string{"fd20:0:0:0:ffff::/80"}}); err != nil {
		t.Fatal(err)
	}
	resp, body := httpDo(t, http.MethodPost, e.base+"/admin/instances", `{"zone":"us-central1-c","name":"node-9","ip":"10.1.0.9","ipv6":"fd20::4009:0:0"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("admin instances: %d %s", resp.StatusCode, body)
	}
	want := map[string]string{
		zoneC + "/node-9": "IPV4_IPV6 10.1.0.9 fd20::4009:0:0/96 INTERNAL []",
		zoneA + "/vm":     "IPV4_IPV6 10.128.0.2 fd20::1:0:0/96 INTERNAL []",
		zoneB + "/vm6":    "IPV6_ONLY  fd20:0:1::1:0:0/96 INTERNAL []",
		zoneA + "/node-1": "IPV4_IPV6 10.1.0.1 fd20::4001:0:0/96 INTERNAL [fd20::ffff:0:0:0/80]",
	}
	for k, w := range want {
		zone, name, _ := strings.Cut(k, "/")
		in, err := e.svc.Instances.Get(project, zone, name).Do()
		if err != nil {
			t.Fatal(err)
		}
		ni := in.NetworkInterfaces[0]
		var aliases []string
		for _, a := range ni.AliasIpv6Ranges {
			aliases = append(aliases, a.IpCidrRange)
		}
		got := fmt.Sprintf("%s %s %s/%d %s %v", ni.StackType, ni.NetworkIP, ni.Ipv6Address, ni.InternalIpv6PrefixLength, ni.Ipv6AccessType, aliases)
		if got != w {
			t.Errorf("%s: %s, want %s", k, got, w)
		}
	}
}

// dualEnv is an emulator whose default subnetwork is dual-stack, with node-1 (IPv4 10.1.0.1,
// pod range 10.64.1.0/24, IPv6 range fd20::4001:0:0/96, alias IPv6 range fd20::ffff:0:0:0/80),
// node-4 (IPv4 only), node-6 (IPv6 only, fd20::6:0:0/96), NEG "web" (default port 80) and, in
// an IPv4-only network "plain", node-plain and NEG "plain".
func dualEnv(t *testing.T, cfg fakegce.Config) *env {
	t.Helper()
	cfg.DefaultStackType = fakegce.StackDual
	e := newEnv(t, cfg)
	for _, spec := range []fakegce.InstanceSpec{
		{Name: "node-1", IP: "10.1.0.1", AliasCIDRs: []string{"10.64.1.0/24"}, IPv6: "fd20::4001:0:0/96", AliasIPv6CIDRs: []string{"fd20:0:0:0:ffff::/80"}},
		{Name: "node-4", IP: "10.1.0.4", AliasCIDRs: []string{"10.64.4.0/24"}},
		{Name: "node-6", IPv6: "fd20::6:0:0", StackType: fakegce.StackIPv6Only},
	} {
		if err := e.s.AddInstance(zoneA, spec); err != nil {
			t.Fatal(err)
		}
	}
	e.insertNEG(zoneA, "web")
	e.must(e.svc.Networks.Insert(project, &compute.Network{Name: "plain", ForceSendFields: []string{"AutoCreateSubnetworks"}}).Do())
	e.must(e.svc.Subnetworks.Insert(project, region, &compute.Subnetwork{Name: "plain", Network: "global/networks/plain", IpCidrRange: "10.200.0.0/20"}).Do())
	if err := e.s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "node-plain", IP: "10.200.0.5", AliasCIDRs: []string{"10.201.0.0/24"}, Network: "global/networks/plain"}); err != nil {
		t.Fatal(err)
	}
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "plain", NetworkEndpointType: "GCE_VM_IP_PORT",
		Network: "global/networks/plain", Subnetwork: "regions/" + region + "/subnetworks/plain", DefaultPort: 80}).Do())
	return e
}

func TestIPv6EndpointValidation(t *testing.T) {
	e := dualEnv(t, fakegce.Config{})
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "hybrid", NetworkEndpointType: "NON_GCP_PRIVATE_IP_PORT", DefaultPort: 443}).Do())
	e.attach(zoneA, "web", ep("node-1", "10.64.1.7", 8080), ep6("node-1", "", "fd20::4001:40:108", 8080))
	for _, tc := range []struct {
		name, neg string
		eps       []*compute.NetworkEndpoint
		message   string
	}{
		{"not IPv6", "web", []*compute.NetworkEndpoint{ep6("node-1", "10.64.1.9", "10.64.1.9", 80)}, "ipv6Address': '10.64.1.9'. Must be an IPv6 address"},
		{"IPv4-mapped", "web", []*compute.NetworkEndpoint{ep6("node-1", "", "::ffff:10.64.1.9", 80)}, "Must be an IPv6 address"},
		{"IPv6 not the instance's", "web", []*compute.NetworkEndpoint{ep6("node-1", "10.64.1.9", "fd20::4002:40:109", 80)},
			"Invalid value for field 'resource.ipv6Address': 'fd20::4002:40:109'. Specified IP address fd20::4002:40:109 doesn't belong to the (sub)network default or to the instance node-1."},
		{"another instance's IPv6", "web", []*compute.NetworkEndpoint{ep6("node-6", "", "fd20::4001:40:9", 80)}, "doesn't belong"},
		{"IPv6 on an IPv4-only interface", "web", []*compute.NetworkEndpoint{ep6("node-4", "10.64.4.9", "fd20::4001:40:109", 80)}, "doesn't belong"},
		{"IPv4 on an IPv6-only interface", "web", []*compute.NetworkEndpoint{ep6("node-6", "10.64.1.9", "fd20::6:0:9", 80)}, "resource.ipAddress"},
		{"IPv6-only interface, no address", "web", []*compute.NetworkEndpoint{ep6("node-6", "", "", 80)}, "no IPv4 address"},
		{"IPv4-only subnetwork", "plain", []*compute.NetworkEndpoint{ep6("node-plain", "10.201.0.9", "fd20::4001:40:109", 80)}, "stack type IPV4_ONLY"},
		{"IPv4-only subnetwork, IPv6 only", "plain", []*compute.NetworkEndpoint{ep6("node-plain", "", "fd20::4001:40:109", 80)}, "stack type IPV4_ONLY"},
		{"hybrid", "hybrid", []*compute.NetworkEndpoint{ep6("", "192.168.1.1", "fd20::1", 80)}, "IPv6 addresses are not supported"},
		{"single-stack attached, dual-stack attach", "web", []*compute.NetworkEndpoint{ep6("node-1", "10.64.1.7", "fd20::4001:40:107", 8080)},
			"shares instance, address 10.64.1.7 and port with network endpoint node-1/10.64.1.7:8080"},
		{"IPv6-only attached, dual-stack attach", "web", []*compute.NetworkEndpoint{ep6("node-1", "10.64.1.8", "fd20::4001:40:108", 8080)},
			"address fd20::4001:40:108 and port with network endpoint node-1/[fd20::4001:40:108]:8080"},
		{"two stacks of one pod in a batch", "web", []*compute.NetworkEndpoint{ep("node-1", "10.64.1.9", 80), ep6("node-1", "10.64.1.9", "fd20::4001:40:109", 80)},
			"shares instance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, tc.neg,
				&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: tc.eps}).Do()
			if ge := wantAPIError(t, err, 400, "invalid"); !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q lacks %q", ge.Message, tc.message)
			}
		})
	}
	// Accepted: dual-stack, IPv6-only (dual-stack and IPv6-only interfaces), an alias IPv6 range,
	// another port of an attached address, an IPv4-only endpoint defaulting to the primary IP.
	e.attach(zoneA, "web",
		ep6("node-1", "10.64.1.9", "fd20::4001:40:109", 80),
		ep6("node-1", "", "fd20::ffff:0:0:1", 80),
		ep6("node-6", "", "fd20::6:0:9", 80),
		ep6("node-1", "10.64.1.7", "fd20::4001:40:107", 9090),
		ep("node-4", "", 80))
	want := []neg.Endpoint{
		{Instance: "node-1", Port: 80, IPv6: "fd20::ffff:0:0:1"},
		{Instance: "node-6", Port: 80, IPv6: "fd20::6:0:9"},
		{Instance: "node-1", Port: 8080, IPv6: "fd20::4001:40:108"},
		{Instance: "node-4", IP: "10.1.0.4", Port: 80},
		{Instance: "node-1", IP: "10.64.1.7", Port: 8080},
		{Instance: "node-1", IP: "10.64.1.7", Port: 9090, IPv6: "fd20::4001:40:107"},
		{Instance: "node-1", IP: "10.64.1.9", Port: 80, IPv6: "fd20::4001:40:109"},
	}
	if got, _ := e.s.NEGEndpoints(zoneA, "web"); !reflect.DeepEqual(got, want) {
		t.Errorf("NEGEndpoints =\n%v\nwant\n%v", got, want)
	}
	var listed []neg.Endpoint
	for _, it := range e.listAll(zoneA, "web", "SKIP", 2) {
		ne := it.NetworkEndpoint
		listed = append(listed, neg.Endpoint{Instance: ne.Instance, IP: ne.IpAddress, Port: ne.Port, IPv6: ne.Ipv6Address})
	}
	if !reflect.DeepEqual(listed, want) {
		t.Errorf("listed =\n%v\nwant\n%v", listed, want)
	}
}

// TestIPv6DetachAndMigration: detach matches all four fields; the single-stack endpoint must go
// before the dual-stack one of the same pod can come (the order of ingress-gce's migrator).
func TestIPv6DetachAndMigration(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			e := dualEnv(t, fakegce.Config{StrictEndpointOps: strict})
			single, dual := ep("node-1", "10.64.1.7", 8080), ep6("node-1", "10.64.1.7", "fd20::4001:40:107", 8080)
			detach := func(eps ...*compute.NetworkEndpoint) error {
				op, err := e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web",
					&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: eps}).Do()
				if err == nil {
					e.wait(op)
				}
				return err
			}
			size := func() int64 {
				n, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do()
				if err != nil {
					t.Fatal(err)
				}
				return n.Size
			}
			e.attach(zoneA, "web", single)
			err := detach(dual) // not what is attached
			if strict {
				wantAPIError(t, err, 400, "invalid")
			} else if err != nil {
				t.Fatal(err)
			}
			if size() != 1 {
				t.Fatal("detaching the dual-stack endpoint removed the single-stack one")
			}
			wantAPIError(t, detach(ep6("node-1", "", "not-an-address", 8080)), 400, "invalid")
			if err := detach(single); err != nil {
				t.Fatal(err)
			}
			e.attach(zoneA, "web", dual)
			if got, _ := e.s.NEGEndpoints(zoneA, "web"); len(got) != 1 || got[0].IPv6 != "fd20::4001:40:107" {
				t.Fatalf("after migration: %v", got)
			}
			// And back: dual-stack out, IPv6-only in.
			if err := detach(dual); err != nil {
				t.Fatal(err)
			}
			e.attach(zoneA, "web", ep6("node-1", "", "fd20::4001:40:107", 8080))
			if size() != 1 {
				t.Errorf("size %d, want 1", size())
			}
		})
	}
}

// TestIPv6Paging lists endpoints that differ only in their IPv6 address in small pages: the page
// token carries the IPv6 address, so none is skipped or repeated.
func TestIPv6Paging(t *testing.T) {
	e := dualEnv(t, fakegce.Config{})
	var eps []*compute.NetworkEndpoint
	for i := 1; i <= 25; i++ {
		eps = append(eps, ep6("node-1", "", fmt.Sprintf("fd20::4001:40:1%02x", i), 8080), ep("node-1", fmt.Sprintf("10.64.1.%d", i), 8080))
	}
	e.attach(zoneA, "web", eps...)
	seen := map[string]int{}
	for _, it := range e.listAll(zoneA, "web", "", 3) {
		seen[it.NetworkEndpoint.IpAddress+"/"+it.NetworkEndpoint.Ipv6Address]++
	}
	if len(seen) != 50 {
		t.Errorf("listed %d distinct endpoints, want 50", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", k, n)
		}
	}
}

// TestIPv6ConflictWhileOperationsRun: the one-stack-per-pod rule is checked again when an
// operation applies (two attaches of one pod racing: the second operation fails and attaches
// nothing), and against what is attached, so an attach sent while the detach of the other
// stack is still RUNNING is refused.
func TestIPv6ConflictWhileOperationsRun(t *testing.T) {
	e := dualEnv(t, fakegce.Config{OperationLatency: 150 * time.Millisecond})
	single, dual := ep("node-1", "10.64.1.7", 8080), ep6("node-1", "10.64.1.7", "fd20::4001:40:107", 8080)
	attach := func(eps ...*compute.NetworkEndpoint) (*compute.Operation, error) {
		return e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: eps}).Do()
	}
	op1, err1 := attach(single)
	op2, err2 := attach(dual) // the single-stack endpoint is not attached yet: accepted for now
	if err1 != nil || err2 != nil {
		t.Fatalf("attach calls: %v, %v", err1, err2)
	}
	e.wait(op1)
	_, err := e.waitErr(op2)
	if ge := wantAPIError(t, err, 400, "INVALID_FIELD_VALUE"); !strings.Contains(ge.Errors[0].Message, "shares instance") {
		t.Errorf("operation error %q", ge.Errors[0].Message)
	}
	if got, _ := e.s.NEGEndpoints(zoneA, "web"); len(got) != 1 || got[0].IPv6 != "" {
		t.Fatalf("endpoints %v, want the single-stack one only", got)
	}
	det, err := e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{single}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if det.Status == "DONE" {
		t.Fatal("detach DONE at once; the test needs it RUNNING")
	}
	_, err = attach(dual)
	wantAPIError(t, err, 400, "invalid")
	e.wait(det)
	e.must(attach(dual))
}
