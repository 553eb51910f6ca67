//go:build e2e

package e2e

import (
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/test/stack"
)

// renderedObject returns the object of that kind and name the manifests render with the
// components, converted into out.
func renderedObject(t *testing.T, kind, name string, out any, components ...string) {
	t.Helper()
	rendered, err := env.Kustomize(ctxFor(t), components...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := stack.DecodeObjects(rendered)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind && o.GetName() == name })
	if i < 0 {
		t.Fatalf("the manifests (components %v) have no %s %s", components, kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[i].Object, out); err != nil {
		t.Fatal(err)
	}
}

// manifestWebhookConfiguration returns the base's MutatingWebhookConfiguration.
func manifestWebhookConfiguration(t *testing.T) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	renderedObject(t, "MutatingWebhookConfiguration", "neg-controller", &mwc)
	return &mwc
}

// TestManifestsWebhookNamespaces: the API server calls the webhook for pods of labelled
// namespaces only (every namespace with the cluster-wide component), never for kube-system or
// the controller's namespace, and the controller's flag agrees with the selector.
func TestManifestsWebhookNamespaces(t *testing.T) {
	type ns struct {
		name     string
		labelled bool
	}
	namespaces := []ns{{"team-a", true}, {"team-b", false}, {"kube-system", true}, {"kube-system", false},
		{"neg-controller", true}, {"neg-controller", false}}
	for _, tc := range []struct {
		components  []string
		clusterWide bool
		want        []bool // per namespaces entry: the webhook is called
	}{
		{nil, false, []bool{true, false, false, false, false, false}},
		{[]string{"cluster-wide-injection"}, true, []bool{true, true, false, false, false, false}},
	} {
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		renderedObject(t, "MutatingWebhookConfiguration", "neg-controller", &mwc, tc.components...)
		sel, err := metav1.LabelSelectorAsSelector(mwc.Webhooks[0].NamespaceSelector)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range namespaces {
			l := labels.Set{corev1.LabelMetadataName: n.name}
			if n.labelled {
				l[readiness.InjectionLabel] = readiness.InjectionEnabled
			}
			if got := sel.Matches(l); got != tc.want[i] {
				t.Errorf("components %v: namespace %s (labelled %v): webhook called %v, want %v", tc.components, n.name, n.labelled, got, tc.want[i])
			}
		}
		var dep appsv1.Deployment
		renderedObject(t, "Deployment", "neg-controller", &dep, tc.components...)
		if got := slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--inject-readiness-gates-cluster-wide"); got != tc.clusterWide {
			t.Errorf("components %v: --inject-readiness-gates-cluster-wide %v, want %v", tc.components, got, tc.clusterWide)
		}
	}
}

// TestManifestsCriticalPriority: a pod of the Deployment is admitted in the controller's
// namespace with priority class system-cluster-critical (server-side dry run: Priority,
// ResourceQuota and Pod Security admission of the real API server).
func TestManifestsCriticalPriority(t *testing.T) {
	var dep appsv1.Deployment
	renderedObject(t, "Deployment", "neg-controller", &dep)
	if dep.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
		t.Fatalf("priorityClassName %q", dep.Spec.Template.Spec.PriorityClassName)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: dep.Namespace, GenerateName: dep.Name + "-", Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
	got, err := env.Kube.CoreV1().Pods(dep.Namespace).Create(ctxFor(t), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry-run create of the Deployment's pod in %s: %v", dep.Namespace, err)
	}
	if got.Spec.Priority == nil || *got.Spec.Priority != 2000000000 {
		t.Errorf("priority %v, want system-cluster-critical's 2000000000", got.Spec.Priority)
	}
	var quota corev1.ResourceQuota
	renderedObject(t, "ResourceQuota", "neg-controller-critical-pods", &quota)
	if quota.Namespace != dep.Namespace || quota.Spec.ScopeSelector == nil ||
		!slices.Contains(quota.Spec.ScopeSelector.MatchExpressions[0].Values, "system-cluster-critical") {
		t.Errorf("no ResourceQuota for system-cluster-critical in %s (GKE refuses the pods without): %+v", dep.Namespace, quota)
	}
}
