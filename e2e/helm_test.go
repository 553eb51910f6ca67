//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// The release testdata/helm-rendered.yaml holds: the chart rendered by hack/helmcheck
// (TestE2EGolden keeps the file equal to what the chart renders; this module does not import
// Helm) as release neg-helm in namespace neg-helm, with flags.metrics-secure. Its objects are
// named apart from the kustomize base's the suite installs, so the controller below runs with
// the chart's RBAC alone.
const (
	helmNamespace      = "neg-helm"
	helmServiceAccount = "neg-helm"
	helmMetricsReader  = "neg-helm-metrics-reader"
	helmWebhookHost    = "neg-controller-webhook." + helmNamespace + ".svc" // the serving certificate's name
	helmCertSecret     = "neg-controller-webhook-cert"
)

// installHelmRendered applies what the controller needs from the rendered chart — its CRDs,
// ServiceAccount, Roles, ClusterRoles and bindings, ResourceQuota — into namespace neg-helm (not
// the workload: the suite runs the controller as a process), and returns the Deployment's
// container arguments.
func installHelmRendered(t *testing.T) []string {
	t.Helper()
	ctx := ctxFor(t)
	b, err := os.ReadFile(filepath.Join("testdata", "helm-rendered.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding testdata/helm-rendered.yaml: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: helmNamespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var items []any
	var args []string
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, a := range cs[0].(map[string]any)["args"].([]any) {
				args = append(args, a.(string))
			}
			continue
		case "PodDisruptionBudget", "Service", "MutatingWebhookConfiguration":
			continue
		}
		items = append(items, o.Object)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubectl(ctx, list, "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the chart's RBAC and CRDs: %v", err)
	}
	if _, err := env.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=1m",
		"crd/servicenetworkendpointgroups.networking.gke.io"); err != nil {
		t.Fatal(err)
	}
	if len(args) == 0 {
		t.Fatal("the rendered chart has no Deployment args")
	}
	return args
}

// serviceAccountToken creates ServiceAccount ns/name if needed and returns a token of it.
func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := ctxFor(t)
	if _, err := env.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr, err := env.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// logAddress waits for the log line msg of the running controller and returns its address.
func logAddress(t *testing.T, msg string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(msg) + `"?\s.*?"?address"?[=:]"?([^"\s]+:[0-9]+)`)
	var addr string
	waitFor(t, 30*time.Second, "log line "+msg, func() (bool, string) {
		b, _ := os.ReadFile(env.Controller().LogPath)
		if m := re.FindSubmatch(b); m != nil {
			addr = string(m[1])
			return true, ""
		}
		return false, env.Controller().LogTail(5)
	})
	return addr
}

// TestHelmChart: with the chart's RBAC and CRDs installed, the controller runs under the chart's
// ServiceAccount with the chart's arguments (leader election on the chart's Lease Role, the
// secured metrics endpoint), syncs a Service's NEGs and is refused nothing (TestMain fails the
// run on any RBAC denial in a controller log). Its /metrics is HTTPS with the webhook's serving
// certificate and answers a ServiceAccount bound to the chart's metrics reader ClusterRole
// (with the build info, client-go's workqueue_* and rest_client_* metrics), 403 to one that is
// not, 401 without a valid token; health checks stay plain HTTP.
func TestHelmChart(t *testing.T) {
	chartArgs := installHelmRendered(t)
	token := serviceAccountToken(t, helmNamespace, helmServiceAccount)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: env.Cluster.APIServerURL, CertificateAuthorityData: env.Cluster.CAData}
	cfg.AuthInfos[helmServiceAccount] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: helmServiceAccount}
	cfg.CurrentContext = "local"
	kc, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}

	// The suite's controller stands down for the chart's; it comes back afterwards.
	if c := env.Controller(); c != nil {
		if err := c.Stop(15 * time.Second); err != nil {
			t.Logf("stopping controller: %v", err)
		}
	}
	t.Cleanup(func() { restartController(t) })
	flags := []string{"--gc-period=3s", "--resync-period=30s"}
	flags = append(flags, chartArgs...)
	// What the Deployment gets from its Pod (POD_NAMESPACE) and what the stack's processes
	// need instead of the Pod's fixed ports (later flags win).
	flags = append(flags, "--leader-elect-namespace="+helmNamespace, "--controller-namespace="+helmNamespace,
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0")
	if !slices.Contains(chartArgs, "--metrics-secure=true") || !slices.Contains(chartArgs, "--leader-elect=true") {
		t.Fatalf("the rendered chart's args %v lack --metrics-secure=true or --leader-elect=true", chartArgs)
	}
	if _, err := env.StartController(kubeconfig, flags...); err != nil {
		t.Fatal(err)
	}

	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)

	metricsAddr := logAddress(t, "Serving metrics over HTTPS")
	healthAddr := logAddress(t, "Serving health checks")
	if code, _ := plainGet(t, "http://"+healthAddr+"/healthz"); code != 200 {
		t.Errorf("plain /healthz = %d", code)
	}
	if code, _ := plainGet(t, "http://"+healthAddr+"/metrics"); code != 404 {
		t.Errorf("/metrics on the health server = %d, want 404", code)
	}

	// Prometheus's identity, bound to the chart's reader ClusterRole; and one that is not.
	reader := serviceAccountToken(t, ns, "prometheus")
	stranger := serviceAccountToken(t, ns, "stranger")
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: helmMetricsReader},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: ns}}}
	if _, err := env.Kube.RbacV1().ClusterRoleBindings().Create(ctxFor(t), crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})

	// The serving certificate is the webhook's: verify it against the CA of its Secret, under
	// the webhook Service's name.
	var pool *x509.CertPool
	waitFor(t, 30*time.Second, "the webhook certificate Secret", func() (bool, string) {
		sec, err := env.Kube.CoreV1().Secrets(helmNamespace).Get(ctxFor(t), helmCertSecret, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pool = x509.NewCertPool()
		return pool.AppendCertsFromPEM(sec.Data["ca.crt"]), "no CA in the Secret"
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: helmWebhookHost, MinVersion: tls.VersionTLS12}}}
	scrape := func(token string) (int, string, error) {
		req, err := http.NewRequest("GET", "https://"+metricsAddr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var body string
	waitFor(t, 30*time.Second, "an allowed scrape", func() (bool, string) {
		code, b, err := scrape(reader)
		if err != nil {
			return false, err.Error()
		}
		body = b
		return code == 200, b
	})
	for _, want := range []string{`neg_controller_build_info{commit="`, `workqueue_depth{name="neg-controller"}`,
		`workqueue_adds_total{name="neg-controller"}`, `workqueue_work_duration_seconds_count{name="neg-controller"}`,
		`rest_client_requests_total{code="200"`, `rest_client_request_duration_seconds_count{host=`,
		`neg_controller_attached_endpoints{`} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"a ServiceAccount not bound to the reader role", stranger, 403}, {"no token", "", 401}, {"a forged token", "not-a-token", 401}} {
		code, b, err := scrape(tc.token)
		if err != nil || code != tc.want {
			t.Errorf("%s: %d %v (%.100s), want %d", tc.who, code, err, b, tc.want)
		}
	}
}

// plainGet GETs url over plain HTTP.
func plainGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
