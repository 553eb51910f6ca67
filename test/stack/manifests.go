package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ManifestsDir returns the repository's manifests/ directory (the kustomize base).
func ManifestsDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "manifests")
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		return "", err
	}
	return dir, nil
}

// KubectlPath returns the kubectl of the pinned Kubernetes release (it has `kubectl kustomize`).
func (s *Stack) KubectlPath() string { return filepath.Join(s.Cluster.BinDir, "kubectl") }

// Kubectl runs kubectl with the admin kubeconfig and stdin (may be nil), and returns its
// standard output; a failure's error includes standard error.
func (s *Stack) Kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.KubectlPath(), append([]string{"--kubeconfig=" + s.Cluster.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// StackComponents are the optional kustomize components the stack installs: a plain cluster
// has no svcneg CRD, so it gets ours and the RBAC for it.
var StackComponents = []string{"svcneg", "svcneg-crd"}

// Kustomize returns `kubectl kustomize` of an overlay of manifests/ with the named components
// of manifests/components/ (none: the base alone), as a user's overlay would build it.
func (s *Stack) Kustomize(ctx context.Context, components ...string) ([]byte, error) {
	dir, err := ManifestsDir()
	if err != nil {
		return nil, err
	}
	if len(components) == 0 {
		return s.Kubectl(ctx, nil, "kustomize", dir)
	}
	overlay, err := os.MkdirTemp("", "neg-overlay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	base, err := filepath.Rel(overlay, dir) // kustomize refuses absolute paths
	if err != nil {
		return nil, err
	}
	var k strings.Builder
	fmt.Fprintf(&k, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents:\n", base)
	for _, c := range components {
		fmt.Fprintf(&k, "- %s\n", filepath.Join(base, "components", c))
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k.String()), 0o644); err != nil {
		return nil, err
	}
	return s.Kubectl(ctx, nil, "kustomize", overlay)
}

// RenderManifests returns the objects of the manifests with StackComponents, in order.
func (s *Stack) RenderManifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	out, err := s.Kustomize(ctx, StackComponents...)
	if err != nil {
		return nil, err
	}
	return DecodeObjects(out)
}

// DecodeObjects decodes a multi-document YAML (or JSON) stream.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// InstallControllerManifests applies what the controller needs from the rendered manifests —
// Namespace, ResourceQuota, CRDs, ServiceAccount, Roles, ClusterRoles and their bindings, everything but the
// workload (Deployment, PodDisruptionBudget, the webhook Service and MutatingWebhookConfiguration: the stack runs the controller as a process) — with
// every binding also granted to User user, and waits until the CRDs are established. A
// controller started with ControllerKubeconfig = Cluster.ControllerKubeconfig then runs with
// exactly the permissions of the manifests (user is "neg-controller", the localcluster identity).
//
// extra names more components to install (e.g. "negbinding" for a test that needs its CRD and
// RBAC); applying is idempotent, so a test may call it again with an extra component.
func (s *Stack) InstallControllerManifests(ctx context.Context, user string, extra ...string) error {
	out, err := s.Kustomize(ctx, append(append([]string(nil), StackComponents...), extra...)...)
	if err != nil {
		return err
	}
	objs, err := DecodeObjects(out)
	if err != nil {
		return err
	}
	var items []any
	var crds []string
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "PodDisruptionBudget", "Service", "MutatingWebhookConfiguration":
			// The workload, and the webhook that only the workload serves (a test that wants
			// the webhook registers its own with a URL).
			continue
		case "RoleBinding", "ClusterRoleBinding":
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			subjects = append(subjects, map[string]any{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user})
			if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
				return err
			}
		case "CustomResourceDefinition":
			crds = append(crds, "crd/"+o.GetName())
		}
		items = append(items, o.Object)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		return err
	}
	if _, err := s.Kubectl(ctx, list, "apply", "-f", "-"); err != nil {
		return err
	}
	if len(crds) == 0 {
		return nil
	}
	args := append([]string{"wait", "--for=condition=Established", "--timeout=" + time.Minute.String()}, crds...)
	_, err = s.Kubectl(ctx, nil, args...)
	return err
}
