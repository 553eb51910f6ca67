package endpoints

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

func ptr[T any](v T) *T { return &v }

// ep builds a slice endpoint for pod on node with one address; options adjust it.
func ep(ip, node, pod string, opts ...func(*discoveryv1.Endpoint)) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{
		Addresses: []string{ip},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod},
	}
	if node != "" {
		e.NodeName = ptr(node)
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func notReady(e *discoveryv1.Endpoint)  { e.Conditions.Ready = ptr(false) }
func readyTrue(e *discoveryv1.Endpoint) { e.Conditions.Ready = ptr(true) }
func terminating(e *discoveryv1.Endpoint) {
	e.Conditions.Terminating = ptr(true)
	e.Conditions.Ready = ptr(false)
}
func terminatingFalse(e *discoveryv1.Endpoint) { e.Conditions.Terminating = ptr(false) }
func noTargetRef(e *discoveryv1.Endpoint)      { e.TargetRef = nil }

type port struct {
	name  *string
	proto *corev1.Protocol
	port  *int32
}

func tcp(name string, p int32) port {
	return port{name: ptr(name), proto: ptr(corev1.ProtocolTCP), port: ptr(p)}
}

func slice(addrType discoveryv1.AddressType, ports []port, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-abc"},
		AddressType: addrType,
		Endpoints:   eps,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: p.name, Protocol: p.proto, Port: p.port})
	}
	return s
}

var (
	httpPort = []port{tcp("http", 8080)}
	nodes    = map[string]zones.Node{
		"n-a1":     {Name: "n-a1", Zone: "zone-a", Instance: "n-a1", Candidate: true},
		"n-a2":     {Name: "n-a2", Zone: "zone-a", Instance: "vm-a2", Candidate: true},
		"n-b1":     {Name: "n-b1", Zone: "zone-b", Instance: "n-b1", Reason: zones.ReasonNotReady},
		"n-c1":     {Name: "n-c1", Zone: "zone-c", Instance: "n-c1", Candidate: true},
		"n-nozone": {Name: "n-nozone", Instance: "n-nozone", Reason: zones.ReasonNoZone},
		"n-noinst": {Name: "n-noinst", Zone: "zone-a"},
	}
	negZones = []string{"zone-a", "zone-b"}
)

func e(instance, ip string, port int64) neg.Endpoint {
	return neg.Endpoint{Instance: instance, IP: ip, Port: port}
}

func pod(name string) PodRef { return PodRef{Namespace: "default", Name: name} }

// result builds an expected Result; zone sets for negZones are always present.
func result(byZone map[string][]neg.Endpoint, pods map[neg.Endpoint]PodRef, ready map[neg.Endpoint]bool, skipped map[SkipReason]int) Result {
	r := Result{ByZone: map[string]neg.EndpointSet{}, Pods: pods, Ready: ready, Skipped: skipped}
	for _, z := range negZones {
		r.ByZone[z] = neg.EndpointSet{}
	}
	for z, eps := range byZone {
		r.ByZone[z] = neg.NewEndpointSet(eps...)
	}
	if r.Pods == nil {
		r.Pods = map[neg.Endpoint]PodRef{}
	}
	if r.Ready == nil {
		r.Ready = map[neg.Endpoint]bool{}
	}
	if r.Skipped == nil {
		r.Skipped = map[SkipReason]int{}
	}
	r.Waiting = map[string]neg.EndpointSet{}
	return r
}

// waiting returns r with these waiting endpoints.
func waiting(r Result, zone string, eps ...neg.Endpoint) Result {
	r.Waiting[zone] = neg.NewEndpointSet(eps...)
	return r
}

func TestDesired(t *testing.T) {
	a1 := e("n-a1", "10.0.0.1", 8080)
	a2 := e("vm-a2", "10.0.0.2", 8080)
	b1 := e("n-b1", "10.0.1.1", 8080)
	tests := []struct {
		name     string
		portName string
		slices   []*discoveryv1.EndpointSlice
		negZones []string // defaults to negZones
		want     Result
	}{
		{name: "no slices", portName: "http", want: result(nil, nil, nil, nil)},
		{name: "nil slice ignored", portName: "http", slices: []*discoveryv1.EndpointSlice{nil}, want: result(nil, nil, nil, nil)},
		{name: "endpoints per zone, instance from node",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort,
				ep("10.0.0.1", "n-a1", "p1"), ep("10.0.0.2", "n-a2", "p2", readyTrue), ep("10.0.1.1", "n-b1", "p3"))},
			want: result(
				map[string][]neg.Endpoint{"zone-a": {a1, a2}, "zone-b": {b1}},
				map[neg.Endpoint]PodRef{a1: pod("p1"), a2: pod("p2"), b1: pod("p3")},
				map[neg.Endpoint]bool{a1: true, a2: true, b1: true}, nil)},
		{name: "not ready kept, terminating dropped without counting",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort,
				ep("10.0.0.1", "n-a1", "p1", notReady), ep("10.0.0.2", "n-a2", "p2", terminating), ep("10.0.1.1", "n-b1", "p3", terminatingFalse))},
			want: result(
				map[string][]neg.Endpoint{"zone-a": {a1}, "zone-b": {b1}},
				map[neg.Endpoint]PodRef{a1: pod("p1"), b1: pod("p3")},
				map[neg.Endpoint]bool{a1: false, b1: true}, nil)},
		{name: "every skip reason counted, good endpoints kept",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, httpPort,
					ep("10.0.0.1", "n-a1", "p1"),
					ep("10.0.9.1", "", "p-nonode"),
					ep("10.0.9.2", "gone", "p-unknown"),
					ep("10.0.9.3", "n-nozone", "p-nozone"),
					ep("10.0.9.4", "n-c1", "p-zone-c"),
					ep("10.0.9.5", "n-c1", "p-zone-c2"),
					ep("10.0.9.6", "n-a1", "", noTargetRef),
					ep("10.0.9.7", "n-a1", "svc", func(e *discoveryv1.Endpoint) { e.TargetRef.Kind = "Service" }),
					ep("fd00::1", "n-a1", "p-v6-in-v4"),
					ep("not-an-ip", "n-a1", "p-garbage"),
					ep("", "n-a1", "p-empty", func(e *discoveryv1.Endpoint) { e.Addresses = nil }),
				),
				slice(discoveryv1.AddressTypeIPv6, httpPort, ep("fd00::2", "n-a1", "p-v6")),
				slice(discoveryv1.AddressTypeFQDN, httpPort, ep("web.example.com", "n-a1", "p-fqdn")),
			},
			want: result(
				map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p1")},
				map[neg.Endpoint]bool{a1: true},
				map[SkipReason]int{SkipNoNodeName: 1, SkipUnknownNode: 1, SkipNodeWithoutZone: 1, SkipZoneWithoutNEG: 2, SkipNoPodRef: 2, SkipOtherFamily: 5})},
		{name: "terminating wins over skip reasons",
			portName: "http",
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.9.1", "", "p", terminating))},
			want:     result(nil, nil, nil, nil)},
		{name: "node without instance: hybrid endpoint, no instance",
			portName: "http",
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.9", "n-noinst", "p"))},
			want: result(map[string][]neg.Endpoint{"zone-a": {e("", "10.0.0.9", 8080)}},
				map[neg.Endpoint]PodRef{e("", "10.0.0.9", 8080): pod("p")},
				map[neg.Endpoint]bool{e("", "10.0.0.9", 8080): true}, nil)},
		{name: "port chosen by name, protocol TCP",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]port{tcp("metrics", 9090), {name: ptr("http"), proto: ptr(corev1.ProtocolUDP), port: ptr(int32(53))}, tcp("http", 8080)},
				ep("10.0.0.1", "n-a1", "p1"))},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p1")}, map[neg.Endpoint]bool{a1: true}, nil)},
		{name: "unnamed port, nil name and nil protocol",
			portName: "",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, []port{{port: ptr(int32(8080))}},
				ep("10.0.0.1", "n-a1", "p1"))},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p1")}, map[neg.Endpoint]bool{a1: true}, nil)},
		{name: "slice without the port contributes nothing",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, []port{tcp("grpc", 9000)}, ep("10.0.0.5", "n-a1", "p5")),
				slice(discoveryv1.AddressTypeIPv4, []port{{name: ptr("http"), proto: ptr(corev1.ProtocolTCP)}}, ep("10.0.0.6", "n-a1", "p6")),
				slice(discoveryv1.AddressTypeIPv4, nil, ep("10.0.0.7", "n-a1", "p7")),
			},
			want: result(nil, nil, nil, nil)},
		{name: "named target port resolving differently per slice",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, []port{tcp("http", 8080)}, ep("10.0.0.1", "n-a1", "p1")),
				slice(discoveryv1.AddressTypeIPv4, []port{tcp("http", 9090)}, ep("10.0.0.2", "n-a2", "p2")),
			},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1, e("vm-a2", "10.0.0.2", 9090)}},
				map[neg.Endpoint]PodRef{a1: pod("p1"), e("vm-a2", "10.0.0.2", 9090): pod("p2")},
				map[neg.Endpoint]bool{a1: true, e("vm-a2", "10.0.0.2", 9090): true}, nil)},
		{name: "duplicates across slices count once, pod by name order, ready if any copy ready",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.1", "n-a1", "p-z", notReady)),
				slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.1", "n-a1", "p-a")),
				slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.1", "n-a1", "p-m", notReady)),
			},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p-a")}, map[neg.Endpoint]bool{a1: true}, nil)},
		{name: "pod namespace defaults to slice namespace",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort,
				ep("10.0.0.1", "n-a1", "p1", func(e *discoveryv1.Endpoint) { e.TargetRef.Namespace = "" }))},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p1")}, map[neg.Endpoint]bool{a1: true}, nil)},
		{name: "only the first address is used",
			portName: "http",
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort,
				ep("10.0.0.1", "n-a1", "p1", func(e *discoveryv1.Endpoint) { e.Addresses = append(e.Addresses, "10.0.0.99") }))},
			want: result(map[string][]neg.Endpoint{"zone-a": {a1}},
				map[neg.Endpoint]PodRef{a1: pod("p1")}, map[neg.Endpoint]bool{a1: true}, nil)},
		{name: "no NEG zones: everything placed is skipped",
			portName: "http",
			negZones: []string{},
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.1", "n-a1", "p1"))},
			want: Result{ByZone: map[string]neg.EndpointSet{}, Pods: map[neg.Endpoint]PodRef{}, Ready: map[neg.Endpoint]bool{}, Waiting: map[string]neg.EndpointSet{},
				Skipped: map[SkipReason]int{SkipZoneWithoutNEG: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			zs := negZones
			if tc.negZones != nil {
				zs = tc.negZones
			}
			var before []*discoveryv1.EndpointSlice
			for _, s := range tc.slices {
				before = append(before, s.DeepCopy())
			}
			got := Desired(tc.portName, tc.slices, nodes, zs, IPv4)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.slices); diff != "" {
				t.Errorf("Desired modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

// TestDesiredHybrid: nodes of another cloud, placed by a zones.Mapping, give endpoints without
// instance in the mapped GCE zones; an unmapped node (no default zone) is skipped.
func TestDesiredHybrid(t *testing.T) {
	m := zones.Mapping{Region: "europe-west1", Zones: map[string]string{"eu-west-1a": "europe-west1-b", "eu-west-1b": "europe-west1-c"}}
	awsNode := func(name, zone string) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{zones.LabelZone: zone}},
			Spec:       corev1.NodeSpec{ProviderID: "aws:///" + zone + "/i-" + name},
			Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
		}
	}
	placed := []zones.Node{m.FromNode(awsNode("ip-1", "eu-west-1a")), m.FromNode(awsNode("ip-2", "eu-west-1b")), m.FromNode(awsNode("ip-3", "eu-west-1c"))}
	negZones := m.NEGZonesFor(placed)
	got := Desired("http", []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, httpPort,
		ep("10.1.0.5", "ip-1", "p1"), ep("10.2.0.7", "ip-2", "p2"), ep("10.3.0.9", "ip-3", "p3"))}, zones.ByName(placed), negZones, IPv4)
	want := Result{
		ByZone:  map[string]neg.EndpointSet{"europe-west1-b": neg.NewEndpointSet(e("", "10.1.0.5", 8080)), "europe-west1-c": neg.NewEndpointSet(e("", "10.2.0.7", 8080))},
		Pods:    map[neg.Endpoint]PodRef{e("", "10.1.0.5", 8080): pod("p1"), e("", "10.2.0.7", 8080): pod("p2")},
		Ready:   map[neg.Endpoint]bool{e("", "10.1.0.5", 8080): true, e("", "10.2.0.7", 8080): true},
		Skipped: map[SkipReason]int{SkipNodeWithoutZone: 1},
		Waiting: map[string]neg.EndpointSet{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Desired (-want +got):\n%s", diff)
	}
}

// TestDesiredStacks: which slices each Stack reads, and how a dual-stack Service's IPv4 and
// IPv6 entries pair up per pod and port.
func TestDesiredStacks(t *testing.T) {
	dsNodes := map[string]zones.Node{
		"n-a1": {Name: "n-a1", Zone: "zone-a", Instance: "n-a1", Candidate: true, DualStack: true},
		"n-a2": {Name: "n-a2", Zone: "zone-a", Instance: "n-a2", Candidate: true}, // IPv4 pod range only
	}
	dual := func(inst, v4, v6 string) neg.Endpoint {
		return neg.Endpoint{Instance: inst, IP: v4, IPv6: v6, Port: 8080}
	}
	v4 := slice(discoveryv1.AddressTypeIPv4, httpPort, ep("10.0.0.1", "n-a1", "p1"), ep("10.0.0.2", "n-a1", "p2", notReady), ep("10.0.0.3", "n-a2", "p3"))
	v6 := slice(discoveryv1.AddressTypeIPv6, httpPort, ep("fd00:0:0:0::1", "n-a1", "p1"), ep("fd00::2", "n-a1", "p2", readyTrue), ep("fd00::4", "n-a1", "p4"))
	tests := []struct {
		name   string
		stack  Stack
		slices []*discoveryv1.EndpointSlice
		want   Result
	}{
		{name: "IPv4 reads IPv4 slices only", stack: IPv4, slices: []*discoveryv1.EndpointSlice{v4, v6},
			want: result(map[string][]neg.Endpoint{"zone-a": {e("n-a1", "10.0.0.1", 8080), e("n-a1", "10.0.0.2", 8080), e("n-a2", "10.0.0.3", 8080)}},
				map[neg.Endpoint]PodRef{e("n-a1", "10.0.0.1", 8080): pod("p1"), e("n-a1", "10.0.0.2", 8080): pod("p2"), e("n-a2", "10.0.0.3", 8080): pod("p3")},
				map[neg.Endpoint]bool{e("n-a1", "10.0.0.1", 8080): true, e("n-a1", "10.0.0.2", 8080): false, e("n-a2", "10.0.0.3", 8080): true},
				map[SkipReason]int{SkipOtherFamily: 3})},
		{name: "IPv6 reads IPv6 slices only, canonical addresses", stack: IPv6, slices: []*discoveryv1.EndpointSlice{v4, v6},
			want: result(map[string][]neg.Endpoint{"zone-a": {dual("n-a1", "", "fd00::1"), dual("n-a1", "", "fd00::2"), dual("n-a1", "", "fd00::4")}},
				map[neg.Endpoint]PodRef{dual("n-a1", "", "fd00::1"): pod("p1"), dual("n-a1", "", "fd00::2"): pod("p2"), dual("n-a1", "", "fd00::4"): pod("p4")},
				map[neg.Endpoint]bool{dual("n-a1", "", "fd00::1"): true, dual("n-a1", "", "fd00::2"): true, dual("n-a1", "", "fd00::4"): true},
				map[SkipReason]int{SkipOtherFamily: 3})},
		// p1, p2: paired (p2 ready because its IPv6 copy is); p3: node without an IPv6 pod
		// range, IPv4 endpoint; p4: IPv6 only, waits for IPv4.
		{name: "dual-stack pairs per pod", stack: DualStack, slices: []*discoveryv1.EndpointSlice{v6, v4},
			want: waiting(result(map[string][]neg.Endpoint{"zone-a": {dual("n-a1", "10.0.0.1", "fd00::1"), dual("n-a1", "10.0.0.2", "fd00::2"), e("n-a2", "10.0.0.3", 8080)}},
				map[neg.Endpoint]PodRef{dual("n-a1", "10.0.0.1", "fd00::1"): pod("p1"), dual("n-a1", "10.0.0.2", "fd00::2"): pod("p2"), e("n-a2", "10.0.0.3", 8080): pod("p3")},
				map[neg.Endpoint]bool{dual("n-a1", "10.0.0.1", "fd00::1"): true, dual("n-a1", "10.0.0.2", "fd00::2"): true, e("n-a2", "10.0.0.3", 8080): true},
				map[SkipReason]int{SkipMissingIPv4: 1}), "zone-a", dual("n-a1", "", "fd00::4"))},
		{name: "dual-stack pod on a dual-stack node waits for its IPv6 slice", stack: DualStack, slices: []*discoveryv1.EndpointSlice{v4},
			want: waiting(result(map[string][]neg.Endpoint{"zone-a": {e("n-a2", "10.0.0.3", 8080)}},
				map[neg.Endpoint]PodRef{e("n-a2", "10.0.0.3", 8080): pod("p3")},
				map[neg.Endpoint]bool{e("n-a2", "10.0.0.3", 8080): true},
				map[SkipReason]int{SkipMissingIPv6: 2}), "zone-a", e("n-a1", "10.0.0.1", 8080), e("n-a1", "10.0.0.2", 8080))},
		{name: "address of the wrong family in a slice", stack: DualStack, slices: []*discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, httpPort, ep("fd00::9", "n-a2", "p9")),
			slice(discoveryv1.AddressTypeIPv6, httpPort, ep("10.0.0.9", "n-a2", "p9"), ep("::ffff:10.0.0.9", "n-a2", "p9"))},
			want: result(nil, nil, nil, map[SkipReason]int{SkipOtherFamily: 3})},
		{name: "FQDN slices are another family", stack: DualStack, slices: []*discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeFQDN, httpPort, ep("example.com", "n-a2", "p9"))},
			want: result(nil, nil, nil, map[SkipReason]int{SkipOtherFamily: 1})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Desired("http", tc.slices, dsNodes, negZones, tc.stack)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStackOf(t *testing.T) {
	svc := func(fams ...corev1.IPFamily) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{IPFamilies: fams}}
	}
	tests := []struct {
		name                string
		svc                 *corev1.Service
		dualStack, ipv6Only bool
		want                Stack
		ok                  bool
	}{
		{"no families is IPv4", svc(), true, true, IPv4, true},
		{"IPv4", svc(corev1.IPv4Protocol), true, true, IPv4, true},
		{"dual-stack", svc(corev1.IPv4Protocol, corev1.IPv6Protocol), true, false, DualStack, true},
		{"dual-stack, IPv6 primary", svc(corev1.IPv6Protocol, corev1.IPv4Protocol), true, false, DualStack, true},
		{"dual-stack NEGs off", svc(corev1.IPv4Protocol, corev1.IPv6Protocol), false, false, IPv4, true},
		{"IPv6-only, allowed", svc(corev1.IPv6Protocol), false, true, IPv6, true},
		{"IPv6-only, not allowed", svc(corev1.IPv6Protocol), true, false, IPv4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := StackOf(tc.svc, tc.dualStack, tc.ipv6Only)
			if got != tc.want || ok != tc.ok {
				t.Errorf("StackOf = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
