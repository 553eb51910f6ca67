package wanted

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/test/objects"
)

const (
	clusterUID = "cluster-uid-1"
	network    = "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
)

var (
	namer = naming.NewNamer("naming-uid-1")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// annotated returns a Service ns/name created at created with ports 80 ("p80") and 443 ("p443")
// and the annotations key=value pairs of kv.
func annotated(ns, name string, created time.Time, kv ...string) *corev1.Service {
	svc := svcAt(ns, name, created)
	svc.Annotations = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		svc.Annotations[kv[i]] = kv[i+1]
	}
	for _, p := range []int32{80, 443} {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p})
	}
	return svc
}

// resolver returns a Resolver over the given Services (claims), Ingresses and NEGs in GCE.
func resolver(t *testing.T, svcs []*corev1.Service, ings []*networkingv1.Ingress, negs ...gce.NEG) *Resolver {
	t.Helper()
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{CustomNameIndex: IndexCustomNames})
	for _, s := range svcs {
		if err := claims.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	ingIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, i := range ings {
		if err := ingIdx.Add(i); err != nil {
			t.Fatal(err)
		}
	}
	index := negindex.New(negindex.Rule{ClusterUID: clusterUID, Network: network, Namer: namer})
	for _, n := range negs {
		index.Put(n)
	}
	return &Resolver{Namer: namer, Ingresses: networkinglisters.NewIngressLister(ingIdx), Claims: claims, Index: index}
}

// ourNEG is a NEG in zone-a whose description names ns/svc port.
func ourNEG(name, ns, svc string, port int32) gce.NEG {
	return gce.NEG{Name: name, Zone: "zone-a", Type: gce.TypeGCEVMIPPort, Network: network,
		Description: naming.NewDescription(clusterUID, ns, svc, port).String()}
}

func TestResolverNEGs(t *testing.T) {
	older := annotated("team-b", "old", t0, annotation.NEGKey, `{"exposed_ports":{"80":{"name":"team-shared"}}}`)
	cases := []struct {
		name       string
		svc        *corev1.Service
		others     []*corev1.Service
		ings       []*networkingv1.Ingress
		negs       []gce.NEG
		prefix     bool
		want       map[int32]Port
		wantReason string
	}{
		{name: "no annotation wants nothing", svc: annotated("ns", "web", t0)},
		{name: "generated names", svc: annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{},"443":{}}}`),
			want: map[int32]Port{
				80:  {Port: 80, PortName: "p80", Name: namer.NEGName("ns", "web", 80)},
				443: {Port: 443, PortName: "p443", Name: namer.NEGName("ns", "web", 443)}}},
		{name: "custom name", svc: annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{"name":"ns-web"}}}`),
			want: map[int32]Port{80: {Port: 80, PortName: "p80", Name: "ns-web", Custom: true}}},
		{name: "ingress adds the ports GCE Ingresses reference",
			svc: annotated("ns", "web", t0, annotation.NEGKey, `{"ingress":true}`),
			ings: []*networkingv1.Ingress{
				objects.Ingress("ns", "lb", "gce", nil, nil, objects.BackendPortName("web", "p443")),
				objects.Ingress("ns", "nginx", "nginx", nil, nil, objects.BackendPort("web", 80))},
			want: map[int32]Port{443: {Port: 443, PortName: "p443", Name: namer.NEGName("ns", "web", 443)}}},
		{name: "malformed annotation", svc: annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":`),
			wantReason: ReasonInvalidAnnotation},
		{name: "ExternalName refused", svc: func() *corev1.Service {
			s := annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{}}}`)
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
			return s
		}(), wantReason: ReasonExternalNameService},
		{name: "IPv6-only refused", svc: func() *corev1.Service {
			s := annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{}}}`)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			return s
		}(), wantReason: ReasonNoIPv4Endpoints},
		{name: "namespace prefix required", prefix: true,
			svc:        annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{"name":"other-web"}}}`),
			wantReason: annotation.ReasonInvalidCustomName},
		{name: "an older claimant wins the name",
			svc:        annotated("team-a", "new", t0.Add(time.Hour), annotation.NEGKey, `{"exposed_ports":{"80":{"name":"team-shared"}}}`),
			others:     []*corev1.Service{older},
			wantReason: ReasonNEGNameConflict},
		{name: "an existing NEG belongs to its Service however young",
			svc:        older,
			others:     []*corev1.Service{annotated("team-a", "new", t0.Add(time.Hour), annotation.NEGKey, `{"exposed_ports":{"80":{"name":"team-shared"}}}`)},
			negs:       []gce.NEG{ourNEG("team-shared", "team-a", "new", 80)},
			wantReason: ReasonNEGNameConflict},
		{name: "the owner of the existing NEG keeps it",
			svc:    annotated("team-a", "new", t0.Add(time.Hour), annotation.NEGKey, `{"exposed_ports":{"80":{"name":"team-shared"}}}`),
			others: []*corev1.Service{older},
			negs:   []gce.NEG{ourNEG("team-shared", "team-a", "new", 80)},
			want:   map[int32]Port{80: {Port: 80, PortName: "p80", Name: "team-shared", Custom: true}}},
		{name: "a NEG of another cluster does not own the name",
			svc: older,
			negs: []gce.NEG{{Name: "team-shared", Zone: "zone-a", Type: gce.TypeGCEVMIPPort, Network: network,
				Description: naming.NewDescription("another-cluster", "x", "y", 80).String()}},
			want: map[int32]Port{80: {Port: 80, PortName: "p80", Name: "team-shared", Custom: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := resolver(t, append([]*corev1.Service{c.svc}, c.others...), c.ings, c.negs...)
			r.RequireNamespacePrefix = c.prefix
			got, _, err := r.NEGs(c.svc)
			var aerr *annotation.Error
			switch {
			case c.wantReason != "":
				if !errors.As(err, &aerr) || aerr.Reason != c.wantReason {
					t.Fatalf("NEGs error = %v, want an annotation.Error with reason %s", err, c.wantReason)
				}
				return
			case err != nil:
				t.Fatalf("NEGs: %v", err)
			}
			if d := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("NEGs (-want +got):\n%s", d)
			}
		})
	}
}

// TestResolverInheritsHybridControllerNames: with AdoptHybridControllerNEGs, a Service of
// solutions.cloud.google.com/hybrid-neg keeps the name k8s-hybrid-neg-controller gave its port
// (listed in hybrid-neg-status) and gets ours for a port that has none; a listed name that
// controller would not have generated for the port is not inherited.
func TestResolverInheritsHybridControllerNames(t *testing.T) {
	theirs := naming.HybridControllerName("cid", "ns", "web", 80)
	status := fmt.Sprintf(`{"network_endpoint_groups":{"80":%q,"443":"hand-made"},"zones":["zone-a"]}`, theirs)
	svc := annotated("ns", "web", t0, annotation.HybridNEGKey, `{"exposed_ports":{"80":{},"443":{}}}`,
		annotation.HybridNEGStatusKey, status)
	for _, adopt := range []bool{true, false} {
		r := resolver(t, []*corev1.Service{svc}, nil)
		r.AdoptHybridControllerNEGs = adopt
		got, src, err := r.NEGs(svc)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32]Port{
			80:  {Port: 80, PortName: "p80", Name: namer.NEGName("ns", "web", 80)},
			443: {Port: 443, PortName: "p443", Name: namer.NEGName("ns", "web", 443)}}
		if adopt {
			want[80] = Port{Port: 80, PortName: "p80", Name: theirs, Inherited: true}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("adopt=%v: NEGs (-want +got):\n%s", adopt, d)
		}
		if NEGType(src) != gce.TypeNonGCPPrivateIPPort {
			t.Errorf("adopt=%v: NEG type %s, want %s", adopt, NEGType(src), gce.TypeNonGCPPrivateIPPort)
		}
	}
}

// TestClaimedNames: the custom names of a valid annotation, sorted and without duplicates; none
// of a malformed one.
func TestClaimedNames(t *testing.T) {
	svc := annotated("ns", "web", t0, annotation.NEGKey, `{"exposed_ports":{"80":{"name":"ns-b"},"443":{"name":"ns-a"}}}`)
	if d := cmp.Diff([]string{"ns-a", "ns-b"}, ClaimedNames(svc)); d != "" {
		t.Errorf("ClaimedNames (-want +got):\n%s", d)
	}
	if got := ClaimedNames(annotated("ns", "bad", t0, annotation.NEGKey, `{`)); got != nil {
		t.Errorf("ClaimedNames of a malformed annotation = %v, want none", got)
	}
}
