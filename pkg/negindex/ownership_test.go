package negindex

import (
	"testing"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// The cluster of the tests, as pkg/controller's tests name it.
const (
	clusterUID = "5b6f7c1e-0d3a-4a57-9f21-3c9e7a1b2c4d"
	namingUID  = "a1b2c3d4e5f60718"
)

var namer = naming.NewNamer(namingUID)

func TestOwnershipRuleJudge(t *testing.T) {
	rule := Rule{ClusterUID: clusterUID, Network: "projects/p/global/networks/default", Namer: namer}
	web80 := naming.NewDescription(clusterUID, "default", "web", 80)
	generated := namer.NEGName("default", "web", 80)
	defaultNet := "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
	tests := []struct {
		name string
		neg  gce.NEG
		want Verdict
	}{
		{name: "generated, all checks hold", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: OwnedGenerated},
		{name: "type unset counts as GCE_VM_IP_PORT", neg: gce.NEG{Name: generated, Network: defaultNet, Description: web80.String()}, want: OwnedGenerated},
		{name: "custom name", neg: gce.NEG{Name: "web-neg", Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: OwnedCustom},
		{name: "GKE L4 NEG with our description", neg: gce.NEG{Name: "k8s2-a1b2c3d4-default-web-80-x", Type: "GCE_VM_IP", Network: defaultNet, Description: web80.String()}, want: WrongType},
		{name: "hybrid NEG (the Service's type is checked per Service)", neg: gce.NEG{Name: generated, Type: gce.TypeNonGCPPrivateIPPort, Network: defaultNet, Description: web80.String()}, want: OwnedGenerated},
		{name: "other network", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: "https://www.googleapis.com/compute/v1/projects/p/global/networks/other", Description: web80.String()}, want: WrongNetwork},
		{name: "restored cluster: other naming UID", neg: gce.NEG{Name: naming.NewNamer("ffffeeee").NEGName("default", "web", 80), Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: WrongName},
		{name: "generated name of another port", neg: gce.NEG{Name: namer.NEGName("default", "web", 81), Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: WrongName},
		{name: "k8s2 name, right type", neg: gce.NEG{Name: "k8s2-abc", Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: WrongName},
		{name: "other cluster", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: naming.NewDescription("other", "default", "web", 80).String()}, want: NotOurs},
		{name: "empty description", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet}, want: NotOurs},
		{name: "unparseable description", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: "made by terraform"}, want: NotOurs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := rule.Judge(tc.neg); got != tc.want {
				t.Errorf("judge = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnershipRuleSameNetwork(t *testing.T) {
	full := "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
	tests := []struct {
		configured, neg string
		want            bool
	}{
		{"projects/p/global/networks/default", full, true},
		{"default", full, true},
		{"other", full, false},
		{"projects/p/global/networks/other", full, false},
		{"projects/q/global/networks/default", full, false},
		{"", full, true},
		{"default", "", true},
	}
	for _, tc := range tests {
		if got := (Rule{Network: tc.configured}).sameNetwork(tc.neg); got != tc.want {
			t.Errorf("sameNetwork(%q, %q) = %v, want %v", tc.configured, tc.neg, got, tc.want)
		}
	}
}

// TestOwnershipRuleHybrid: the verdicts on hybrid NEGs and on k8s-hybrid-neg-controller's NEGs,
// with and without adopting.
func TestOwnershipRuleHybrid(t *testing.T) {
	defaultNet := "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
	web80 := naming.NewDescription(clusterUID, "default", "web", 80).String()
	theirName := naming.HybridControllerName("c0ffee12", "default", "web", 80)
	marks := map[string]string{naming.HybridControllerCreatedByKey: naming.HybridControllerCreatedBy, naming.HybridControllerServiceKey: "default/web"}
	theirs := gce.NEG{Name: theirName, Type: gce.TypeNonGCPPrivateIPPort, Network: defaultNet,
		Description: naming.HybridControllerDescription, Annotations: marks}
	theirsWith := func(f func(*gce.NEG)) gce.NEG { n := theirs; f(&n); return n }
	tests := []struct {
		name string
		neg  gce.NEG
		// the verdicts without and with AdoptHybrid
		plain, adopting Verdict
	}{
		{"their NEG", theirs, HybridController, HybridController},
		{"their NEG, GCE_VM_IP_PORT", theirsWith(func(n *gce.NEG) { n.Type = gce.TypeGCEVMIPPort }), NotOurs, NotOurs},
		{"their NEG, other network", theirsWith(func(n *gce.NEG) { n.Network = "projects/p/global/networks/other" }), NotOurs, NotOurs},
		{"their NEG, subnetwork", theirsWith(func(n *gce.NEG) { n.Subnetwork = "projects/p/regions/r/subnetworks/s" }), NotOurs, NotOurs},
		{"their NEG, bad Service reference", theirsWith(func(n *gce.NEG) {
			n.Annotations = map[string]string{naming.HybridControllerCreatedByKey: naming.HybridControllerCreatedBy}
		}), NotOurs, NotOurs},
		{"our hybrid NEG with their generated name", gce.NEG{Name: theirName, Type: gce.TypeNonGCPPrivateIPPort, Network: defaultNet, Description: web80}, WrongName, OwnedCustom},
		{"our NEG with their name of another port", gce.NEG{Name: naming.HybridControllerName("c0ffee12", "default", "web", 81), Type: gce.TypeNonGCPPrivateIPPort,
			Network: defaultNet, Description: web80}, WrongName, WrongName},
		{"our hybrid NEG with a subnetwork", gce.NEG{Name: namer.NEGName("default", "web", 80), Type: gce.TypeNonGCPPrivateIPPort, Network: defaultNet,
			Subnetwork: "projects/p/regions/r/subnetworks/s", Description: web80}, WrongNetwork, WrongNetwork},
	}
	for _, tc := range tests {
		for _, adopt := range []bool{false, true} {
			rule := Rule{ClusterUID: clusterUID, Network: "default", Namer: namer, AdoptHybrid: adopt}
			want := tc.plain
			if adopt {
				want = tc.adopting
			}
			if _, got := rule.Judge(tc.neg); got != want {
				t.Errorf("%s (adopt %v): judge = %v, want %v", tc.name, adopt, got, want)
			}
			if got := rule.Ours(want); got != (want == OwnedGenerated || want == OwnedCustom || (want == HybridController && adopt)) {
				t.Errorf("%s (adopt %v): ours(%v) = %v", tc.name, adopt, want, got)
			}
		}
	}
}
