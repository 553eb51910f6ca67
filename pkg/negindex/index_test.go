package negindex

import (
	"testing"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestNEGIndex(t *testing.T) {
	x := New(Rule{ClusterUID: "cluster", Namer: naming.NewNamer("a1b2c3d4")})
	desc := func(svc, port string) string {
		return naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: svc, Port: port}.String()
	}
	n1 := gce.NEG{Zone: "z1", Name: "n1", Description: desc("web", "80")}
	n2 := gce.NEG{Zone: "z1", Name: "n2", Description: `{"cluster-uid":"other"}`}
	n3 := gce.NEG{Zone: "z2", Name: "n1", Description: desc("web", "80")}
	if lost := x.Refresh([]gce.NEG{n1, n2, n3}, x.Generation()); len(lost) != 0 {
		t.Errorf("lost %v", lost)
	}
	web := cache.ObjectName{Namespace: "ns", Name: "web"}
	if got := len(x.OwnedBy(web)); got != 2 {
		t.Fatalf("ownedBy = %d, want 2", got)
	}
	if e := x.Get(neg.Ref{Zone: "z1", Name: "n2"}); e == nil || e.Ours {
		t.Errorf("foreign NEG: %+v", e)
	}

	// A listing that started before our create and delete must not undo them.
	gen := x.Generation()
	created := gce.NEG{Zone: "z3", Name: "n1", Description: desc("web", "80")}
	x.Put(created)
	x.Remove(neg.Ref{Zone: "z2", Name: "n1"})
	x.Refresh([]gce.NEG{n1, n2, n3}, gen)
	if x.Get(neg.Ref{Zone: "z3", Name: "n1"}) == nil {
		t.Errorf("stale listing dropped a NEG we created")
	}
	if x.Get(neg.Ref{Zone: "z2", Name: "n1"}) != nil {
		t.Errorf("stale listing resurrected a NEG we deleted")
	}
	// A later listing is the truth.
	if lost := x.Refresh([]gce.NEG{n1}, x.Generation()); len(lost) != 1 || lost[0] != web {
		t.Errorf("lost = %v, want [%v]", lost, web)
	}
	if got := len(x.OwnedBy(web)); got != 1 {
		t.Errorf("after refresh ownedBy = %d, want 1", got)
	}
	if got := x.Owners(); len(got) != 1 || got[0] != web {
		t.Errorf("owners = %v", got)
	}

	// Adopting a generated-name NEG without description attributes it to the Service.
	x.Put(gce.NEG{Zone: "z9", Name: "k8s1-x"})
	x.Adopt(gce.NEG{Zone: "z9", Name: "k8s1-x"}, naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: "other", Port: "81"})
	if got := len(x.OwnedBy(cache.ObjectName{Namespace: "ns", Name: "other"})); got != 1 {
		t.Errorf("adopted NEG not owned: %d", got)
	}
}
