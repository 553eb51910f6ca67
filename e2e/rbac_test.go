//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/neg-controller/neg-controller/test/stack"
)

// TestRBACManifestsApply: the kustomize base (`kubectl kustomize manifests/`), alone and with
// each optional component, is accepted by the API server (server-side dry run: schema,
// admission, Pod Security "restricted" of the controller's namespace), and holds what
// production needs; the svcneg CRD and its RBAC only come with their components.
func TestRBACManifestsApply(t *testing.T) {
	base := []string{"Namespace", "ResourceQuota", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
		"Role", "RoleBinding", "Deployment", "PodDisruptionBudget", "Service", "MutatingWebhookConfiguration"}
	for _, tc := range []struct {
		components []string
		crd        bool
		svcnegRole bool
	}{
		{components: nil},
		{components: []string{"svcneg"}, svcnegRole: true},
		{components: []string{"svcneg", "svcneg-crd"}, crd: true, svcnegRole: true},
		{components: []string{"cluster-wide-injection"}},
		{components: []string{"metrics-secure"}},
		{components: []string{"negbinding"}, crd: true},
	} {
		t.Run(strings.Join(append([]string{"base"}, tc.components...), "+"), func(t *testing.T) {
			ctx := ctxFor(t)
			rendered, err := env.Kustomize(ctx, tc.components...)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := stack.DecodeObjects(rendered)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			roles := map[string]bool{}
			for _, o := range objs {
				kinds[o.GetKind()]++
				if o.GetKind() == "ClusterRole" {
					roles[o.GetName()] = true
				}
			}
			for _, k := range base {
				if kinds[k] == 0 {
					t.Errorf("the manifests have no %s (kinds: %v)", k, kinds)
				}
			}
			if got := kinds["CustomResourceDefinition"] > 0; got != tc.crd {
				t.Errorf("CRD rendered: %v, want %v", got, tc.crd)
			}
			if got := roles["neg-controller-svcneg"]; got != tc.svcnegRole {
				t.Errorf("svcneg ClusterRole rendered: %v, want %v", got, tc.svcnegRole)
			}
			// kubectl prints admission warnings (e.g. "would violate PodSecurity") on stderr,
			// which Kubectl returns only on failure: run it here to see them.
			out, err := kubectlCombined(t, rendered, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry run of the manifests failed: %v\n%s", err, out)
			}
			if strings.Contains(out, "Warning") {
				t.Errorf("the API server warned about the manifests:\n%s", out)
			}
			t.Logf("dry run:\n%s", out)
		})
	}
	dep, err := env.Kube.AppsV1().Deployments("neg-controller").Get(ctxFor(t), "neg-controller", metav1.GetOptions{})
	if err == nil {
		t.Logf("a Deployment exists in the cluster (%s); the dry run did not create it, something else did", dep.Name)
	}
}

// kubectlCombined runs the stack's kubectl and returns stdout and stderr together.
func kubectlCombined(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(stdin); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for i, a := range args {
		if a == "-" {
			args[i] = f.Name()
		}
	}
	return runCombined(env.KubectlPath(), append([]string{"--kubeconfig=" + env.Cluster.Kubeconfig}, args...)...)
}

// TestRBACLeastPrivilege: the controller's identity, bound to the manifests' roles exactly as
// the suite's controller runs, may do what the code does and nothing around it.
func TestRBACLeastPrivilege(t *testing.T) {
	client, err := kubernetes.NewForConfig(env.Cluster.ControllerRESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		verb, group, resource, sub, ns, name string
	}
	allowed := []check{
		{verb: "list", resource: "services"}, {verb: "watch", resource: "services"},
		{verb: "patch", resource: "services", ns: "any"},
		{verb: "list", resource: "nodes"}, {verb: "watch", resource: "nodes"},
		{verb: "list", group: "discovery.k8s.io", resource: "endpointslices"},
		{verb: "watch", group: "discovery.k8s.io", resource: "endpointslices"},
		{verb: "list", group: "networking.k8s.io", resource: "ingresses"},
		{verb: "watch", group: "networking.k8s.io", resource: "ingresses"},
		{verb: "create", resource: "events", ns: "any"}, {verb: "patch", resource: "events", ns: "any"},
		{verb: "get", resource: "namespaces", name: "kube-system"},
		{verb: "get", resource: "configmaps", ns: "kube-system", name: "ingress-uid"},
		{verb: "update", resource: "configmaps", ns: "kube-system", name: "ingress-uid"},
		{verb: "create", resource: "configmaps", ns: "kube-system"},
		{verb: "get", group: "coordination.k8s.io", resource: "leases", ns: "neg-controller", name: "neg-controller"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "neg-controller", name: "neg-controller"},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", ns: "neg-controller"},
		{verb: "list", group: "networking.gke.io", resource: "servicenetworkendpointgroups"},
		{verb: "get", group: "networking.gke.io", resource: "servicenetworkendpointgroups", ns: "any"},
		{verb: "create", group: "networking.gke.io", resource: "servicenetworkendpointgroups", ns: "any"},
		{verb: "update", group: "networking.gke.io", resource: "servicenetworkendpointgroups", ns: "any"},
		{verb: "delete", group: "networking.gke.io", resource: "servicenetworkendpointgroups", ns: "any"},
		{verb: "update", group: "networking.gke.io", resource: "servicenetworkendpointgroups", sub: "status", ns: "any"},
		// Readiness gate (pkg/readiness): pod informer and condition, namespace labels, the
		// webhook's certificate Secret and configuration.
		{verb: "list", resource: "pods"}, {verb: "watch", resource: "pods"},
		{verb: "patch", resource: "pods", sub: "status", ns: "any"},
		{verb: "list", resource: "namespaces"}, {verb: "watch", resource: "namespaces"},
		{verb: "get", resource: "secrets", ns: "neg-controller", name: "neg-controller-webhook-cert"},
		{verb: "update", resource: "secrets", ns: "neg-controller", name: "neg-controller-webhook-cert"},
		{verb: "create", resource: "secrets", ns: "neg-controller"},
		{verb: "get", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "neg-controller"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "neg-controller"},
	}
	denied := []check{
		{verb: "get", resource: "secrets", ns: "default"}, {verb: "list", resource: "secrets"},
		{verb: "get", resource: "secrets", ns: "kube-system"}, {verb: "get", resource: "secrets", ns: "neg-controller"},
		{verb: "get", resource: "services", ns: "default"},
		{verb: "update", resource: "services", ns: "default"}, {verb: "create", resource: "services", ns: "default"},
		{verb: "delete", resource: "services", ns: "default"},
		{verb: "get", resource: "pods", ns: "default"}, {verb: "patch", resource: "pods", ns: "default"},
		{verb: "update", resource: "pods", sub: "status", ns: "default"}, {verb: "patch", resource: "nodes"},
		{verb: "get", resource: "secrets", ns: "neg-controller", name: "other"},
		{verb: "create", resource: "secrets", ns: "default"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "other"},
		{verb: "list", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations"},
		{verb: "get", resource: "configmaps", ns: "kube-system", name: "kube-proxy"},
		{verb: "update", resource: "configmaps", ns: "kube-system", name: "coredns"},
		{verb: "list", resource: "configmaps", ns: "kube-system"},
		{verb: "create", resource: "configmaps", ns: "default"},
		{verb: "get", resource: "namespaces", name: "default"}, {verb: "update", resource: "namespaces", name: "default"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "neg-controller", name: "other"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "neg-controller"},
		{verb: "delete", resource: "events", ns: "default"},
		{verb: "patch", group: "networking.gke.io", resource: "servicenetworkendpointgroups", ns: "default"},
		{verb: "create", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
	}
	ask := func(c check) bool {
		ns := c.ns
		if ns == "any" {
			ns = "some-namespace"
		}
		r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctxFor(t), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.sub, Namespace: ns, Name: c.name}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview: %v", err)
		}
		return r.Status.Allowed
	}
	for _, c := range allowed {
		if !ask(c) {
			t.Errorf("denied, but the code needs it: %+v", c)
		}
	}
	for _, c := range denied {
		if ask(c) {
			t.Errorf("allowed, but the code does not need it: %+v", c)
		}
	}
}

// forbiddenLogLines returns the lines of every controller log of the run in which the API
// server refused the controller something. TestMain fails the run if there is any: calls whose
// failure fails no test (events, say) are covered too.
func forbiddenLogLines() []string {
	logs, _ := filepath.Glob(filepath.Join(env.WorkDir, "logs", "neg-controller-*.log"))
	// RBAC denials read `User "neg-controller" cannot list resource "pods" in API group ""…`
	// (other Forbidden answers, like "namespace is being terminated", are not about RBAC).
	forbidden := regexp.MustCompile(`cannot [a-z]+ resource`)
	var out []string
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if forbidden.MatchString(line) {
				out = append(out, filepath.Base(p)+": "+line)
			}
		}
	}
	return out
}

// runCombined runs a command and returns its standard output and error together.
func runCombined(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
