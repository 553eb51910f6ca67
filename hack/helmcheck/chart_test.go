package helmcheck

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// render renders the chart as release neg-controller in namespace neg-controller (what
// manifests/ uses) and decodes it.
func render(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	out, err := RenderChart("neg-controller", "neg-controller", values)
	if err != nil {
		t.Fatalf("rendering the chart with %v: %v", values, err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func kustomize(t *testing.T, components ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := RenderKustomize(components...)
	if err != nil {
		t.Fatalf("kustomize with %v: %v", components, err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func flagValues(kv ...any) map[string]any {
	flags := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		flags[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"flags": flags}
}

// canon returns v as canonical JSON.
func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rbac returns the RBAC objects by kind/namespace/name: each Role's rules (as a sorted set) and
// each binding's roleRef and subjects.
func rbac(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		key := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		switch o.GetKind() {
		case "ClusterRole", "Role":
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			var rs []string
			for _, r := range rules {
				rs = append(rs, canon(r))
			}
			sort.Strings(rs)
			out[key] = strings.Join(rs, "\n")
		case "ClusterRoleBinding", "RoleBinding":
			out[key] = canon(map[string]any{"roleRef": o.Object["roleRef"], "subjects": o.Object["subjects"]})
		}
	}
	return out
}

// find returns the one object of that kind.
func find(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	i := slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind })
	if i < 0 {
		t.Fatalf("no %s rendered", kind)
	}
	return objs[i]
}

// container returns the Deployment's container without its image (kustomize's is a placeholder
// the user sets, the chart's the appVersion).
func container(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment").Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	c := cs[0].(map[string]any)
	delete(c, "image")
	return c
}

// args returns the container's arguments with bare boolean flags spelled --x=true.
func args(c map[string]any) []string {
	var out []string
	for _, a := range c["args"].([]any) {
		s := a.(string)
		if !strings.Contains(s, "=") {
			s += "=true"
		}
		out = append(out, s)
	}
	return out
}

// TestChartMatchesKustomize: for the default values the chart renders the same kinds, RBAC
// rules and bindings, Deployment arguments (in the same order) and container as the kustomize
// base with its svcneg component; and for each other optional component, the chart values that
// stand for it do the same.
func TestChartMatchesKustomize(t *testing.T) {
	for _, tc := range []struct {
		name           string
		components     []string
		values         map[string]any
		extraChartArgs []string
	}{
		{name: "defaults", components: []string{"svcneg"}},
		{name: "cluster-wide injection", components: []string{"svcneg", "cluster-wide-injection"},
			values: flagValues("inject-readiness-gates-cluster-wide", true)},
		{name: "metrics-secure", components: []string{"svcneg", "metrics-secure"},
			values: flagValues("metrics-secure", true)},
		{name: "negbinding", components: []string{"svcneg", "negbinding"},
			values: flagValues("enable-negbinding", true)},
		// The base alone has no svcneg RBAC (the controller then writes none); the chart also
		// says so with the flag.
		{name: "no svcneg", values: flagValues("enable-svcneg", false), extraChartArgs: []string{"--enable-svcneg=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chart, kust := render(t, tc.values), kustomize(t, tc.components...)
			kinds := func(objs []*unstructured.Unstructured, skip ...string) []string {
				var ks []string
				for _, o := range objs {
					if !slices.Contains(skip, o.GetKind()) {
						ks = append(ks, o.GetKind()+" "+o.GetName())
					}
				}
				sort.Strings(ks)
				return ks
			}
			// The chart leaves the namespace to `helm install --create-namespace` (or
			// namespace.create); the svcneg CRD lives in crds/, the negbinding CRD is a
			// template (TestCRDsMatch compares both with the components').
			if diff := cmp.Diff(kinds(kust, "Namespace", "CustomResourceDefinition"), kinds(chart, "CustomResourceDefinition")); diff != "" {
				t.Errorf("objects (-kustomize +chart):\n%s", diff)
			}
			if diff := cmp.Diff(rbac(kust), rbac(chart)); diff != "" {
				t.Errorf("RBAC (-kustomize +chart):\n%s", diff)
			}
			kc, cc := container(t, kust), container(t, chart)
			ka, ca := append(args(kc), tc.extraChartArgs...), args(cc)
			if tc.name != "defaults" { // components append their flags; order aside, the same
				sort.Strings(ka)
				sort.Strings(ca)
			}
			if diff := cmp.Diff(ka, ca); diff != "" {
				t.Errorf("Deployment args (-kustomize +chart):\n%s", diff)
			}
			delete(kc, "args")
			delete(cc, "args")
			if diff := cmp.Diff(kc, cc); diff != "" {
				t.Errorf("container (-kustomize +chart):\n%s", diff)
			}
			podSpec := func(objs []*unstructured.Unstructured) map[string]any {
				spec, _, _ := unstructured.NestedMap(find(t, objs, "Deployment").Object, "spec", "template", "spec")
				delete(spec, "containers")
				delete(spec, "topologySpreadConstraints") // label selectors: the chart adds the instance label
				return spec
			}
			if diff := cmp.Diff(podSpec(kust), podSpec(chart)); diff != "" {
				t.Errorf("pod spec (-kustomize +chart):\n%s", diff)
			}
			webhooks := func(objs []*unstructured.Unstructured) any {
				return find(t, objs, "MutatingWebhookConfiguration").Object["webhooks"]
			}
			if diff := cmp.Diff(webhooks(kust), webhooks(chart)); diff != "" {
				t.Errorf("webhooks (-kustomize +chart):\n%s", diff)
			}
		})
	}
}

// TestCRDsMatch: the chart's crds/ holds the svcneg-crd component's CRD, and its files/ the
// negbinding component's, byte for byte; the negbinding CRD is rendered with the flag only,
// and left out with negBinding.installCRD=false.
func TestCRDsMatch(t *testing.T) {
	for _, f := range []struct{ component, chart string }{
		{"manifests/components/svcneg-crd/servicenetworkendpointgroups.yaml", "crds/servicenetworkendpointgroups.yaml"},
		{"manifests/components/negbinding/networkendpointgroupbindings.yaml", "files/networkendpointgroupbindings.yaml"},
	} {
		a, err := os.ReadFile(filepath.Join(RepoRoot(), f.component))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(ChartDir(), f.chart))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("charts/neg-controller/%s differs from %s: copy it", f.chart, f.component)
		}
	}
	const negbindingCRD = "networkendpointgroupbindings.networking.gke.io"
	rendered := func(values map[string]any) bool {
		return slices.ContainsFunc(render(t, values), func(o *unstructured.Unstructured) bool {
			return o.GetKind() == "CustomResourceDefinition" && o.GetName() == negbindingCRD
		})
	}
	on := flagValues("enable-negbinding", true)
	if rendered(nil) || !rendered(on) {
		t.Errorf("%s rendered by default: %v, with flags.enable-negbinding: %v; want false, true", negbindingCRD, rendered(nil), rendered(on))
	}
	on["negBinding"] = map[string]any{"installCRD": false}
	if rendered(on) {
		t.Errorf("%s rendered with negBinding.installCRD=false", negbindingCRD)
	}
}

// TestChartLint runs Helm's linter (Chart.yaml, values against values.schema.json, templates,
// CRDs) with the default values and with every option on; no error or warning may remain.
func TestChartLint(t *testing.T) {
	kv, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string]map[string]any{"defaults": {}, "everything": everything()} {
		res := lint.RunAll(ChartDir(), values, "neg-controller", lint.WithKubeVersion(kv))
		for _, m := range res.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("%s: %s", name, m)
			}
		}
	}
}

// everything turns every optional feature on.
func everything() map[string]any {
	return map[string]any{
		"namespace":        map[string]any{"create": true},
		"certManager":      map[string]any{"enabled": true},
		"metrics":          map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "podMonitor": map[string]any{"enabled": true, "authorization": map[string]any{"type": "Bearer"}}},
		"extraArgs":        []any{"--some-new-flag=100"},
		"serviceAccount":   map[string]any{"annotations": map[string]any{"iam.gke.io/gcp-service-account": "neg@p.iam.gserviceaccount.com"}},
		"podLabels":        map[string]any{"team": "net"},
		"podAnnotations":   map[string]any{"a": "b"},
		"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
		"flags": map[string]any{"metrics-secure": true, "concurrent-syncs": 20, "resync-period": "5m",
			"project": "p", "kube-api-qps": 75.5, "dry-run": true, "enable-negbinding": true},
	}
}

// TestChartOptions renders the chart with options on and off and checks what they change.
func TestChartOptions(t *testing.T) {
	objs := render(t, everything())
	for _, want := range []string{"Namespace neg-controller", "Certificate neg-controller-webhook", "Issuer neg-controller-selfsigned",
		"ServiceMonitor neg-controller", "PodMonitor neg-controller", "Service neg-controller-metrics",
		"ClusterRole neg-controller-metrics-reader", "ClusterRoleBinding neg-controller-auth-delegator",
		"CustomResourceDefinition networkendpointgroupbindings.networking.gke.io", "ClusterRole neg-controller-negbinding",
		"ClusterRoleBinding neg-controller-negbinding", "ClusterRole neg-controller-negbinding-editor"} {
		if !slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind()+" "+o.GetName() == want }) {
			t.Errorf("everything on: no %s", want)
		}
	}
	got := args(container(t, objs))
	want := []string{"--leader-elect=true", "--metrics-bind-address=:8080", "--concurrent-syncs=20", "--dry-run=true",
		"--enable-negbinding=true", "--kube-api-qps=75.5", "--metrics-secure=true", "--project=p", "--resync-period=5m", "--v=2", "--some-new-flag=100"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	sm := canon(find(t, objs, "ServiceMonitor").Object["spec"])
	for _, want := range []string{`"scheme":"https"`, `"serverName":"neg-controller-webhook.neg-controller.svc"`,
		`"bearerTokenFile":"/var/run/secrets/kubernetes.io/serviceaccount/token"`} {
		if !strings.Contains(sm, want) {
			t.Errorf("secure ServiceMonitor lacks %s: %s", want, sm)
		}
	}
	if _, ok := find(t, objs, "MutatingWebhookConfiguration").GetAnnotations()["cert-manager.io/inject-ca-from"]; !ok {
		t.Error("cert-manager: no CA injection annotation on the webhook")
	}

	// No webhook: no webhook objects, no webhook RBAC; no metrics: no port, no annotations.
	objs = render(t, flagValues("webhook-bind-address", "0", "metrics-bind-address", "0", "leader-elect", false))
	for _, o := range objs {
		switch k := o.GetKind() + " " + o.GetName(); k {
		case "MutatingWebhookConfiguration neg-controller", "Service neg-controller-webhook", "Role neg-controller-webhook-cert",
			"Role neg-controller-leader-election":
			t.Errorf("rendered %s", k)
		}
	}
	if strings.Contains(canon(container(t, objs)), "Probe") {
		t.Error("probes without a health server")
	}

	// An unknown flag fails the render.
	if _, err := RenderChart("neg-controller", "neg-controller", flagValues("no-such-flag", 1)); err == nil {
		t.Error("an unknown flag rendered")
	}
}

// E2E* name the release the e2e suite installs (e2e/helm_test.go): its own fullname and
// namespace, so its RBAC is separate from the kustomize base's the suite installs, with the
// secured metrics endpoint.
const (
	E2ERelease   = "neg-helm"
	E2ENamespace = "neg-helm"
)

// E2EValues are the values of that release.
func E2EValues() map[string]any {
	return map[string]any{"fullnameOverride": E2ERelease, "flags": map[string]any{"metrics-secure": true}}
}

// TestE2EGolden keeps e2e/testdata/helm-rendered.yaml equal to the chart rendered for the e2e
// suite (go test -update rewrites it).
func TestE2EGolden(t *testing.T) {
	out, err := RenderChart(E2ERelease, E2ENamespace, E2EValues())
	if err != nil {
		t.Fatal(err)
	}
	header := "# The chart charts/neg-controller rendered by hack/helmcheck (TestE2EGolden) as release " + E2ERelease +
		"\n# in namespace " + E2ENamespace + " with values " + canon(E2EValues()) +
		".\n# e2e/helm_test.go installs its RBAC and CRDs and runs the controller under its ServiceAccount.\n" +
		"# Generated: do not edit; `make chart-gen` rewrites it.\n"
	checkFile(t, filepath.Join(RepoRoot(), "e2e", "testdata", "helm-rendered.yaml"), header+string(out))
}

// TestSchemaRefusesBadValues: values.schema.json refuses unknown flags and wrong types.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, v := range []map[string]any{flagValues("concurrent-syncs", "ten"), flagValues("leader-elect", "yes"),
		flagValues("no-such-flag", 1), {"replicaCount": "two"}} {
		if _, err := RenderChart("neg-controller", "neg-controller", v); err == nil {
			t.Errorf("values %v rendered", v)
		}
	}
}
