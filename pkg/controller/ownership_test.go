package controller

import (
	"testing"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

func TestOwnershipRuleJudge(t *testing.T) {
	rule := ownershipRule{clusterUID: clusterUID, network: "projects/p/global/networks/default", namer: namer}
	web80 := naming.NewDescription(clusterUID, "default", "web", 80)
	generated := namer.NEGName("default", "web", 80)
	defaultNet := "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
	tests := []struct {
		name string
		neg  gce.NEG
		want verdict
	}{
		{name: "generated, all checks hold", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: ownedGenerated},
		{name: "type unset counts as GCE_VM_IP_PORT", neg: gce.NEG{Name: generated, Network: defaultNet, Description: web80.String()}, want: ownedGenerated},
		{name: "custom name", neg: gce.NEG{Name: "web-neg", Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: ownedCustom},
		{name: "GKE L4 NEG with our description", neg: gce.NEG{Name: "k8s2-a1b2c3d4-default-web-80-x", Type: "GCE_VM_IP", Network: defaultNet, Description: web80.String()}, want: wrongType},
		{name: "hybrid NEG (the Service's type is checked per Service)", neg: gce.NEG{Name: generated, Type: gce.TypeNonGCPPrivateIPPort, Network: defaultNet, Description: web80.String()}, want: ownedGenerated},
		{name: "other network", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: "https://www.googleapis.com/compute/v1/projects/p/global/networks/other", Description: web80.String()}, want: wrongNetwork},
		{name: "restored cluster: other naming UID", neg: gce.NEG{Name: naming.NewNamer("ffffeeee").NEGName("default", "web", 80), Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: wrongName},
		{name: "generated name of another port", neg: gce.NEG{Name: namer.NEGName("default", "web", 81), Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: wrongName},
		{name: "k8s2 name, right type", neg: gce.NEG{Name: "k8s2-abc", Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: web80.String()}, want: wrongName},
		{name: "other cluster", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: naming.NewDescription("other", "default", "web", 80).String()}, want: notOurs},
		{name: "empty description", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet}, want: notOurs},
		{name: "unparseable description", neg: gce.NEG{Name: generated, Type: gce.TypeGCEVMIPPort, Network: defaultNet, Description: "made by terraform"}, want: notOurs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := rule.judge(tc.neg); got != tc.want {
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
		if got := (ownershipRule{network: tc.configured}).sameNetwork(tc.neg); got != tc.want {
			t.Errorf("sameNetwork(%q, %q) = %v, want %v", tc.configured, tc.neg, got, tc.want)
		}
	}
}
