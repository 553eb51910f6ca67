package controller

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/endpoints"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func svcAt(ns, name string, created time.Time) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
}

func TestNameWinner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := svcAt("ns1", "a", t0)
	b := svcAt("ns1", "b", t0.Add(time.Minute))
	sameTime := svcAt("ns0", "z", t0)
	cases := []struct {
		name      string
		svc       *corev1.Service
		claimants []*corev1.Service
		want      *corev1.Service
	}{
		{"alone", a, []*corev1.Service{a}, nil},
		{"older wins", b, []*corev1.Service{a, b}, a},
		{"older keeps it", a, []*corev1.Service{a, b}, nil},
		{"tie broken by namespace/name", a, []*corev1.Service{a, sameTime}, sameTime},
		{"tie winner keeps it", sameTime, []*corev1.Service{a, sameTime, b}, nil},
		{"svc not listed itself", b, []*corev1.Service{a}, a},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nameWinner(c.svc, c.claimants); got != c.want {
				t.Errorf("nameWinner = %v, want %v", got, c.want)
			}
		})
	}
}

func TestKeyBackoff(t *testing.T) {
	k := newKeyBackoff(backoff.Policy{Base: time.Second, Max: 4 * time.Second})
	key := keyOf("ns", "svc")
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, k.When(key).Truncate(time.Second))
	}
	if d := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}, got); d != "" {
		t.Errorf("delays (-want +got):\n%s", d)
	}
	if k.NumRequeues(key) != 4 {
		t.Errorf("NumRequeues = %d", k.NumRequeues(key))
	}
	k.Forget(key)
	if d := k.When(key); d >= 2*time.Second {
		t.Errorf("after Forget: %s", d)
	}
}

func TestNEGIndex(t *testing.T) {
	x := newNEGIndex(ownershipRule{clusterUID: "cluster", namer: naming.NewNamer("a1b2c3d4")})
	desc := func(svc, port string) string {
		return naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: svc, Port: port}.String()
	}
	n1 := gce.NEG{Zone: "z1", Name: "n1", Description: desc("web", "80")}
	n2 := gce.NEG{Zone: "z1", Name: "n2", Description: `{"cluster-uid":"other"}`}
	n3 := gce.NEG{Zone: "z2", Name: "n1", Description: desc("web", "80")}
	if lost := x.refresh([]gce.NEG{n1, n2, n3}, x.generation()); len(lost) != 0 {
		t.Errorf("lost %v", lost)
	}
	web := keyOf("ns", "web")
	if got := len(x.ownedBy(web)); got != 2 {
		t.Fatalf("ownedBy = %d, want 2", got)
	}
	if e := x.get(neg.Ref{Zone: "z1", Name: "n2"}); e == nil || e.ours {
		t.Errorf("foreign NEG: %+v", e)
	}

	// A listing that started before our create and delete must not undo them.
	gen := x.generation()
	created := gce.NEG{Zone: "z3", Name: "n1", Description: desc("web", "80")}
	x.put(created)
	x.remove(neg.Ref{Zone: "z2", Name: "n1"})
	x.refresh([]gce.NEG{n1, n2, n3}, gen)
	if x.get(neg.Ref{Zone: "z3", Name: "n1"}) == nil {
		t.Errorf("stale listing dropped a NEG we created")
	}
	if x.get(neg.Ref{Zone: "z2", Name: "n1"}) != nil {
		t.Errorf("stale listing resurrected a NEG we deleted")
	}
	// A later listing is the truth.
	if lost := x.refresh([]gce.NEG{n1}, x.generation()); len(lost) != 1 || lost[0] != web {
		t.Errorf("lost = %v, want [%v]", lost, web)
	}
	if got := len(x.ownedBy(web)); got != 1 {
		t.Errorf("after refresh ownedBy = %d, want 1", got)
	}
	if got := x.owners(); len(got) != 1 || got[0] != web {
		t.Errorf("owners = %v", got)
	}

	// Adopting a generated-name NEG without description attributes it to the Service.
	x.put(gce.NEG{Zone: "z9", Name: "k8s1-x"})
	x.putOwned(gce.NEG{Zone: "z9", Name: "k8s1-x"}, naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: "other", Port: "81"})
	if got := len(x.ownedBy(keyOf("ns", "other"))); got != 1 {
		t.Errorf("adopted NEG not owned: %d", got)
	}
}

func TestSkipSummary(t *testing.T) {
	got := skipSummary(map[endpoints.SkipReason]int{endpoints.SkipUnknownNode: 2, endpoints.SkipNotIPv4: 5, endpoints.SkipNoNodeName: 1})
	if want := "NoNodeName=1, UnknownNode=2"; got != want {
		t.Errorf("skipSummary = %q, want %q", got, want)
	}
}

func TestWarningMemory(t *testing.T) {
	w := newWarningMemory()
	k := keyOf("ns", "svc")
	if !w.changed(k, "s", "m1") || w.changed(k, "s", "m1") {
		t.Error("same message reported twice or first not reported")
	}
	if !w.changed(k, "s", "m2") {
		t.Error("new message not reported")
	}
	w.clear(k, "s")
	if !w.changed(k, "s", "m2") {
		t.Error("message not reported after clear")
	}
}

func TestSliceServiceIndex(t *testing.T) {
	slice := func(ns, svc string) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s", Labels: map[string]string{}}}
		if svc != "" {
			es.Labels[discoveryv1.LabelServiceName] = svc
		}
		return es
	}
	for _, tc := range []struct {
		obj  any
		want []string
	}{
		{slice("shop", "web"), []string{"shop/web"}},
		{slice("shop", ""), nil},
		{&corev1.Service{}, nil},
	} {
		if got, err := sliceServiceOf(tc.obj); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("sliceServiceOf(%v) = %v, %v; want %v", tc.obj, got, err, tc.want)
		}
	}
}
