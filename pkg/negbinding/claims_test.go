package negbinding

import (
	"testing"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestClaimsDecide(t *testing.T) {
	ref := neg.Ref{Zone: "z", Name: "web"}
	a, b := cache.ObjectName{Namespace: "ns", Name: "a"}, cache.ObjectName{Namespace: "ns", Name: "b"}
	none := cache.ObjectName{}
	type step struct {
		me     holder
		others []holder
		want   cache.ObjectName
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "alone: the binding takes it", steps: []step{
			{me: holder{key: a, named: true}, want: a},
		}},
		{name: "first accepted keeps it while it names it", steps: []step{
			{me: holder{key: a, named: true, created: 2}, others: []holder{{key: b, named: true, created: 1}}, want: a},
			{me: holder{key: b, named: true, created: 1}, others: []holder{{key: a, named: true, created: 2}}, want: a},
		}},
		{name: "a recorded NEG belongs to the binding that records it, named or not", steps: []step{
			{me: holder{key: b, named: true, created: 1}, others: []holder{{key: a, recorded: true, created: 2}}, want: a},
		}},
		{name: "recorded beats the registry (restart, another process's write)", steps: []step{
			{me: holder{key: a, named: true, created: 1}, want: a},
			{me: holder{key: a, named: true, created: 1}, others: []holder{{key: b, recorded: true, named: true, created: 2}}, want: b},
		}},
		{name: "two records: the oldest binding", steps: []step{
			{me: holder{key: b, recorded: true, named: true, created: 1}, others: []holder{{key: a, recorded: true, named: true, created: 1}}, want: a},
		}},
		{name: "released when the owner no longer names it", steps: []step{
			{me: holder{key: a, named: true}, want: a},
			{me: holder{key: b, named: true}, others: []holder{{key: a}}, want: b},
		}},
		{name: "not named and not recorded: nobody", steps: []step{
			{me: holder{key: a}, want: none},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClaims()
			for i, s := range tc.steps {
				if got := c.decide(ref, s.me, s.others); got != s.want {
					t.Fatalf("step %d: decide = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestClaimsRelease(t *testing.T) {
	c := newClaims()
	a := cache.ObjectName{Namespace: "ns", Name: "a"}
	r1, r2 := neg.Ref{Zone: "z1", Name: "n"}, neg.Ref{Zone: "z2", Name: "n"}
	c.decide(r1, holder{key: a, named: true}, nil)
	c.decide(r2, holder{key: a, named: true}, nil)
	if got := c.release(a, map[neg.Ref]bool{r1: true}); len(got) != 1 || got[0] != r2 {
		t.Errorf("release kept r1: got %v, want [%v]", got, r2)
	}
	if got := c.release(a, nil); len(got) != 1 || got[0] != r1 {
		t.Errorf("release all: got %v, want [%v]", got, r1)
	}
}
