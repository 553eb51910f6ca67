package negbinding

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func validSpec() Spec {
	return Spec{
		BackendRef:            &BackendRef{Kind: ServiceKind, Name: "web", Port: 80},
		NetworkEndpointGroups: []SpecNEGRef{{Name: "web-neg", Zones: []string{"us-central1-a", "us-central1-b"}}},
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
		want   []string // substrings, one per problem
	}{
		{name: "valid", mutate: func(*Spec) {}},
		{name: "core group", mutate: func(s *Spec) { s.BackendRef.Group = "core" }},
		{name: "no NEGs is valid", mutate: func(s *Spec) { s.NetworkEndpointGroups = nil }},
		{name: "NEG without zones is not a spec problem", mutate: func(s *Spec) { s.NetworkEndpointGroups[0].Zones = nil }},
		{name: "no backendRef", mutate: func(s *Spec) { s.BackendRef = nil }, want: []string{"backendRef is required"}},
		{name: "other group", mutate: func(s *Spec) { s.BackendRef.Group = "apps" }, want: []string{"group must be empty"}},
		{name: "other kind", mutate: func(s *Spec) { s.BackendRef.Kind = "Deployment" }, want: []string{`kind must be "Service"`}},
		{name: "no name and bad port", mutate: func(s *Spec) { s.BackendRef.Name, s.BackendRef.Port = "", 0 },
			want: []string{"name is required", "port must be"}},
		{name: "bad NEG name", mutate: func(s *Spec) { s.NetworkEndpointGroups[0].Name = "Web_NEG" }, want: []string{"not a valid NEG name"}},
		{name: "bad zone and duplicate zone", mutate: func(s *Spec) {
			s.NetworkEndpointGroups[0].Zones = []string{"us-central1-a", "us-central1-a", "Zone A"}
		}, want: []string{`"us-central1-a" is listed twice`, `"Zone A" is not a zone name`}},
		{name: "same name twice, same subnet", mutate: func(s *Spec) {
			s.NetworkEndpointGroups = append(s.NetworkEndpointGroups, s.NetworkEndpointGroups[0])
		}, want: []string{"listed twice", "only one NEG per subnet"}},
		{name: "bad subnet", mutate: func(s *Spec) { s.NetworkEndpointGroups[0].Subnet = "Sub/net" }, want: []string{"not a subnetwork name"}},
		{name: "too many zones", mutate: func(s *Spec) {
			s.NetworkEndpointGroups[0].Zones = strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")
		}, want: []string{"at most 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(&s)
			got := Validate(s)
			if len(got) != len(tc.want) {
				t.Fatalf("Validate = %q, want %d problem(s) %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestSpecRefs(t *testing.T) {
	s := Spec{NetworkEndpointGroups: []SpecNEGRef{
		{Name: "b", Subnet: "s2", Zones: []string{"z2", "z1"}},
		{Name: "a", Zones: []string{"z3"}},
		{Name: "c"},
	}}
	refs, noZones := specRefs(s)
	want := []boundRef{{ref: neg.Ref{Zone: "z3", Name: "a"}}, {ref: neg.Ref{Zone: "z1", Name: "b"}, subnet: "s2"},
		{ref: neg.Ref{Zone: "z2", Name: "b"}, subnet: "s2"}}
	if d := cmp.Diff(want, refs, cmp.AllowUnexported(boundRef{})); d != "" {
		t.Errorf("refs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"c"}, noZones); d != "" {
		t.Errorf("noZones (-want +got):\n%s", d)
	}
}

func TestPrecheck(t *testing.T) {
	allow, err := ParseAllowList("team-a=team-a-.*")
	if err != nil {
		t.Fatal(err)
	}
	e := env{subnetwork: "projects/p/regions/r/subnetworks/nodes"}
	ref := func(name, subnet string) boundRef {
		return boundRef{ref: neg.Ref{Zone: "z", Name: name}, subnet: subnet}
	}
	for _, tc := range []struct {
		name      string
		namespace string
		r         boundRef
		allow     AllowList
		want      string // reason, "" = nothing against it
	}{
		{name: "plain name, no allow-list", namespace: "x", r: ref("web", "")},
		{name: "cluster's subnet by name", namespace: "x", r: ref("web", "nodes")},
		{name: "allowed", namespace: "team-a", r: ref("team-a-web", ""), allow: allow},
		{name: "not allowed in namespace", namespace: "team-b", r: ref("team-a-web", ""), allow: allow, want: ReasonNEGNotAllowed},
		{name: "name not allowed", namespace: "team-a", r: ref("web", ""), allow: allow, want: ReasonNEGNotAllowed},
		{name: "generated name k8s1", namespace: "x", r: ref("k8s1-a1b2c3d4-default-web-80-912f4002", ""), want: ReasonNEGManagedByController},
		{name: "generated name k8s2", namespace: "x", r: ref("k8s2-abc", ""), want: ReasonNEGManagedByController},
		{name: "other subnet", namespace: "x", r: ref("web", "other"), want: ReasonNEGSubnetMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := precheck(tc.namespace, tc.r, tc.allow, e)
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("refused: %+v", *got)
			case tc.want != "" && (got == nil || got.reason != tc.want):
				t.Errorf("got %+v, want reason %s", got, tc.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	const (
		uid   = "5b6f7c1e-0d3a-4a57-9f21-3c9e7a1b2c4d"
		netA  = "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
		netB  = "https://www.googleapis.com/compute/v1/projects/p/global/networks/other"
		subA  = "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/default"
		subB  = "https://www.googleapis.com/compute/v1/projects/p/regions/r/subnetworks/other"
		clust = "prod"
	)
	e := env{clusterUID: uid, clusterName: clust, network: "projects/p/global/networks/default",
		subnetwork: "projects/p/regions/r/subnetworks/default"}
	base := gce.NEG{Name: "web", Zone: "z", Type: gce.TypeGCEVMIPPort, Network: netA, Subnetwork: subA}
	for _, tc := range []struct {
		name   string
		mutate func(*gce.NEG)
		subnet string
		env    *env
		want   string
	}{
		{name: "user NEG, empty description", mutate: func(*gce.NEG) {}},
		{name: "free-text description", mutate: func(n *gce.NEG) { n.Description = "managed by terraform" }},
		{name: "type empty is the default", mutate: func(n *gce.NEG) { n.Type = "" }},
		{name: "no subnetwork on the NEG", mutate: func(n *gce.NEG) { n.Subnetwork = "" }},
		{name: "spec subnet matches", mutate: func(*gce.NEG) {}, subnet: "default"},
		{name: "GKE binding description for this namespace and cluster",
			mutate: func(n *gce.NEG) { n.Description = `{"cluster-name":"prod","namespace":"ns","backend-ref":"x"}` }},
		{name: "bare network name configured", mutate: func(*gce.NEG) {}, env: &env{network: "default"}},
		{name: "this cluster's annotation NEG", want: ReasonNEGManagedByController, mutate: func(n *gce.NEG) {
			n.Description = `{"cluster-uid":"` + uid + `","namespace":"ns","service-name":"web","port":"80"}`
		}},
		{name: "another cluster's annotation NEG", want: ReasonNEGManagedByController, mutate: func(n *gce.NEG) {
			n.Description = `{"cluster-uid":"other","namespace":"ns","service-name":"web","port":"80"}`
		}},
		{name: "binding description for another namespace", want: ReasonNEGDescriptionMismatch,
			mutate: func(n *gce.NEG) { n.Description = `{"cluster-name":"prod","namespace":"other"}` }},
		{name: "binding description for another cluster", want: ReasonNEGDescriptionMismatch,
			mutate: func(n *gce.NEG) { n.Description = `{"cluster-name":"dev","namespace":"ns"}` }},
		{name: "L4 NEG", want: ReasonNEGTypeMismatch, mutate: func(n *gce.NEG) { n.Type = "GCE_VM_IP" }},
		{name: "hybrid NEG", want: ReasonNEGTypeMismatch, mutate: func(n *gce.NEG) { n.Type = gce.TypeNonGCPPrivateIPPort }},
		{name: "other network", want: ReasonNEGNetworkMismatch, mutate: func(n *gce.NEG) { n.Network = netB }},
		{name: "other network, bare name configured", want: ReasonNEGNetworkMismatch, env: &env{network: "default"},
			mutate: func(n *gce.NEG) { n.Network = netB }},
		{name: "other subnetwork than the cluster's", want: ReasonNEGSubnetMismatch, mutate: func(n *gce.NEG) { n.Subnetwork = subB }},
		{name: "other subnetwork than the spec's", want: ReasonNEGSubnetMismatch, subnet: "nodes", env: &env{},
			mutate: func(*gce.NEG) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			tc.mutate(&n)
			ee := e
			if tc.env != nil {
				ee = *tc.env
			}
			got := judge(n, "ns", tc.subnet, ee)
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("refused: %+v", *got)
			case tc.want != "" && (got == nil || got.reason != tc.want):
				t.Errorf("got %+v, want reason %s", got, tc.want)
			case got != nil && !strings.Contains(got.message, `"web"`):
				t.Errorf("message %q does not name the NEG", got.message)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	a, err := ParseAllowList(" team-a=team-a-.* , *=shared-web,shop=shop ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns, name string
		want     bool
	}{
		{"team-a", "team-a-web", true},
		{"team-a", "xteam-a-web", false}, // matched in full
		{"team-b", "team-a-web", false},
		{"team-b", "shared-web", true},
		{"shop", "shop", true},
		{"shop", "shop-2", false},
	} {
		if got := a.Allows(tc.ns, tc.name); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.ns, tc.name, got, tc.want)
		}
	}
	if a.String() != "team-a=team-a-.*,*=shared-web,shop=shop" {
		t.Errorf("String() = %q", a.String())
	}
	if empty, _ := ParseAllowList(""); !empty.Empty() || !empty.Allows("any", "neg") {
		t.Error("the empty list must allow everything")
	}
	for _, bad := range []string{"team-a", "=x", "team-a=", "Team_A=x", "team-a=(", "*=x,y"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
}

func TestRefFromURL(t *testing.T) {
	for url, want := range map[string]neg.Ref{
		"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/networkEndpointGroups/web": {Zone: "us-central1-a", Name: "web"},
		"projects/p/zones/z/networkEndpointGroups/n":                                                     {Zone: "z", Name: "n"},
		"http://127.0.0.1:1234/compute/v1/projects/p/zones/z/networkEndpointGroups/n":                    {Zone: "z", Name: "n"},
		"https://www.googleapis.com/compute/v1/projects/p/regions/r/networkEndpointGroups/n":             {},
		"": {},
	} {
		got, ok := refFromURL(url)
		if ok != (want != neg.Ref{}) || (ok && got != want) {
			t.Errorf("refFromURL(%q) = %v, %v; want %v", url, got, ok, want)
		}
	}
}
