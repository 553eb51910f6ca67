package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/test/stack"
)

// `make run` also shows a NetworkEndpointGroupBinding (unless --binding-manifest=""; not in
// hybrid mode, where bindings do not apply): it creates the zonal NEG bindingNEG in every zone
// with nodes through the Compute API, as Terraform would (no ownership description), runs the
// controller with the negbinding component's CRD and RBAC and --enable-negbinding, and applies
// manifests/examples/negbinding.yaml, which binds port 80 of default/web to those NEGs. The
// session counts as synced only when they hold the same pods as the annotation's NEGs.

// bindingNEG is the pre-created NEG the sample binding names.
const bindingNEG = "web-tf"

// createBindingNEGs creates bindingNEG in each zone of the stack's nodes and waits for the
// operations.
func createBindingNEGs(ctx context.Context, st *stack.Stack) ([]string, error) {
	zones := map[string]bool{}
	var out []string
	for _, n := range st.Nodes {
		if !zones[n.Zone] {
			zones[n.Zone] = true
			out = append(out, n.Zone)
		}
	}
	for _, z := range out {
		n := &compute.NetworkEndpointGroup{Name: bindingNEG, NetworkEndpointType: "GCE_VM_IP_PORT", Description: "made by terraform",
			Network: "projects/" + st.Project + "/global/networks/default"}
		op, err := st.Compute.NetworkEndpointGroups.Insert(st.Project, z, n).Context(ctx).Do()
		if err != nil {
			return nil, fmt.Errorf("creating NEG %s in %s: %w", bindingNEG, z, err)
		}
		for op.Status != "DONE" {
			if op, err = st.Compute.ZoneOperations.Wait(st.Project, z, op.Name).Context(ctx).Do(); err != nil {
				return nil, fmt.Errorf("creating NEG %s in %s: %w", bindingNEG, z, err)
			}
		}
		if op.Error != nil && len(op.Error.Errors) > 0 {
			return nil, fmt.Errorf("creating NEG %s in %s: %s", bindingNEG, z, op.Error.Errors[0].Message)
		}
	}
	return out, nil
}

// applyManifest runs kubectl apply -f path.
func applyManifest(ctx context.Context, s *session, path string) error {
	apply := exec.CommandContext(ctx, s.kubectl, "--kubeconfig", s.kubeconfig, "apply", "-f", path)
	apply.Stdout, apply.Stderr = os.Stdout, os.Stderr
	if err := apply.Run(); err != nil {
		return fmt.Errorf("kubectl apply -f %s: %w", path, err)
	}
	return nil
}
