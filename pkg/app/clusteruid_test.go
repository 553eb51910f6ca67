package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// testClusterUID is the kube-system Namespace UID of the test cluster.
const testClusterUID = "cluster-uid-1"

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

// uidEnv is the emulator behind the real compute adapter, and a fake Kubernetes API holding
// the kube-system Namespace.
type uidEnv struct {
	srv   *fakegce.Server
	base  string // the emulator's URL
	cloud *gce.Compute
	kube  *fake.Clientset
}

func newUIDEnv(t *testing.T, objs ...runtime.Object) *uidEnv {
	t.Helper()
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: "p", Region: "us-central1"})
	cloud, err := gce.New(t.Context(), gce.Config{Project: "p", Region: "us-central1", Endpoint: base, WithoutAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: types.UID(testClusterUID)}})
	return &uidEnv{srv: srv, base: base, cloud: cloud, kube: fake.NewClientset(objs...)}
}

// negSpec is a NEG to create in zone us-central1-<zone>.
type negSpec struct{ zone, name, desc string }

// generated is the NEG GKE would have made for ns/svc:port in a cluster with namingUID.
func generated(zone, namingUID, clusterUID, ns, svc string, port int32) negSpec {
	return negSpec{zone: zone, name: naming.NewNamer(namingUID).NEGName(ns, svc, port),
		desc: naming.NewDescription(clusterUID, ns, svc, port).String()}
}

func (e *uidEnv) createNEGs(t *testing.T, negs ...negSpec) {
	t.Helper()
	for _, n := range negs {
		if _, err := e.cloud.CreateNEG(t.Context(), "us-central1-"+n.zone, gce.NEGSpec{Name: n.name, Description: n.desc}); err != nil {
			t.Fatal(err)
		}
	}
}

// storedUID returns the uid key of the ConfigMap, or "" (and false) without a ConfigMap.
func (e *uidEnv) storedUID(t *testing.T) (string, bool) {
	t.Helper()
	cm, err := e.kube.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "ingress-uid", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["uid"], true
}

func uidConfigMapWith(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "ingress-uid"}, Data: data}
}

// TestNamingUIDRecoveredFromNEGs: the ConfigMap is gone but a NEG of this cluster with a
// generated name exists; its uid8 is used again (and stored), not a new random UID. (Written
// before the fix; it failed then: a new random UID was minted.)
func TestNamingUIDRecoveredFromNEGs(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	e := newUIDEnv(t)
	e.createNEGs(t, generated("a", "a1b2c3d4e5f60718", testClusterUID, "ns", "svc", 80))
	uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, "")
	if err != nil || uid != "a1b2c3d4" {
		t.Fatalf("NamingUID = %q, %v; want the uid8 of the existing NEG, a1b2c3d4", uid, err)
	}
	if stored, _ := e.storedUID(t); stored != "a1b2c3d4" {
		t.Errorf("ConfigMap holds %q, want a1b2c3d4", stored)
	}
}

// TestNamingUIDWithoutConfigMap: what a missing ConfigMap (or uid key) becomes, depending on
// the NEGs of the project.
func TestNamingUIDWithoutConfigMap(t *testing.T) {
	const ours, other = "a1b2c3d4e5f60718", "ffee0011aabb2233"
	custom := negSpec{zone: "a", name: "my-custom-neg", desc: naming.NewDescription(testClusterUID, "ns", "web", 443).String()}
	// A k8s1- name whose hash does not match its description (another port): not generated.
	forged := negSpec{zone: "b", name: naming.NewNamer(ours).NEGName("ns", "web", 80),
		desc: naming.NewDescription(testClusterUID, "ns", "web", 81).String()}
	cases := []struct {
		name       string
		configMap  *corev1.ConfigMap
		negs       []negSpec
		want       string   // the UID; "random" for 16 new hex characters
		wantErr    []string // substrings of the error
		wantStored bool
	}{{
		name: "no NEGs: new UID",
		want: "random", wantStored: true,
	}, {
		name: "NEGs of another cluster only: new UID",
		negs: []negSpec{generated("a", other, "other-cluster", "ns", "web", 80), custom2(other)},
		want: "random", wantStored: true,
	}, {
		name: "one uid8 in several zones, with custom names and other clusters' NEGs",
		negs: []negSpec{generated("a", ours, testClusterUID, "ns", "web", 80), generated("b", ours, testClusterUID, "ns", "web", 80),
			generated("a", ours, testClusterUID, "other-ns", "api", 8080), custom, generated("c", other, "other-cluster", "ns", "web", 80)},
		want: "a1b2c3d4", wantStored: true,
	}, {
		name:      "ConfigMap without the uid key: completed from the NEGs, other keys kept",
		configMap: uidConfigMapWith(map[string]string{"provider-uid": "x"}),
		negs:      []negSpec{generated("a", ours, testClusterUID, "ns", "web", 80)},
		want:      "a1b2c3d4", wantStored: true,
	}, {
		name:    "two uid8s: ambiguous",
		negs:    []negSpec{generated("a", ours, testClusterUID, "ns", "web", 80), generated("a", other, testClusterUID, "ns", "api", 80)},
		wantErr: []string{"--cluster-uid", "a1b2c3d4", "ffee0011", "kube-system/ingress-uid"},
	}, {
		name:    "only custom-named NEGs of this cluster",
		negs:    []negSpec{custom},
		wantErr: []string{"--cluster-uid", "us-central1-a/my-custom-neg"},
	}, {
		name:    "a k8s1- name that its description does not generate",
		negs:    []negSpec{forged},
		wantErr: []string{"--cluster-uid", forged.name},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			var objs []runtime.Object
			if tc.configMap != nil {
				objs = append(objs, tc.configMap)
			}
			e := newUIDEnv(t, objs...)
			e.createNEGs(t, tc.negs...)
			uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, "")
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("NamingUID = %q, want an error", uid)
				}
				t.Logf("error: %v", err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			} else if err != nil {
				t.Fatalf("NamingUID: %v", err)
			}
			switch {
			case tc.want == "random" && (!hex16.MatchString(uid) || strings.HasPrefix(uid, other[:8])):
				t.Errorf("NamingUID = %q, want a new random UID", uid)
			case tc.want != "random" && uid != tc.want:
				t.Errorf("NamingUID = %q, want %q", uid, tc.want)
			}
			stored, exists := e.storedUID(t)
			if tc.wantStored && stored != uid {
				t.Errorf("ConfigMap holds %q, want %q", stored, uid)
			}
			if !tc.wantStored && stored != "" {
				t.Errorf("ConfigMap holds %q after an error, want nothing stored", stored)
			}
			if tc.configMap != nil && exists {
				cm, _ := e.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "ingress-uid", metav1.GetOptions{})
				if cm.Data["provider-uid"] != "x" {
					t.Errorf("other keys lost: %v", cm.Data)
				}
			}
		})
	}
}

// custom2 is a custom-named NEG of another cluster.
func custom2(uid string) negSpec {
	return negSpec{zone: "b", name: "k8s1-" + uid[:8] + "-hand-made",
		desc: naming.NewDescription("other-cluster", "ns", "x", 80).String()}
}

// TestNamingUIDFromConfigMapOrFlag: a stored UID is used as it is (no NEG listed) and a
// second start reads what the first stored; the flag wins over everything; an invalid stored
// value stops the start.
func TestNamingUIDFromConfigMapOrFlag(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	e := newUIDEnv(t)
	// A NEG of another UID that must not be looked at while the ConfigMap answers.
	e.createNEGs(t, generated("a", "ffee0011aabb2233", testClusterUID, "ns", "web", 80))
	if _, err := e.kube.CoreV1().ConfigMaps("kube-system").Create(ctx, uidConfigMapWith(map[string]string{"uid": "0123456789abcdef"}),
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetCounts()
	if uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, ""); err != nil || uid != "0123456789abcdef" {
		t.Errorf("stored: %q %v", uid, err)
	}
	if uid, err := NamingUID(ctx, e.kube, nil, testClusterUID, "fromflag"); err != nil || uid != "fromflag" {
		t.Errorf("flag: %q %v", uid, err)
	}
	if n := len(e.srv.Counts()); n != 0 {
		t.Errorf("GCE was called %v; a stored UID or the flag needs no NEG listing", e.srv.Counts())
	}

	for _, bad := range []string{"Bad UID", "abc-def", "ABCDEF01"} {
		e := newUIDEnv(t, uidConfigMapWith(map[string]string{"uid": bad}))
		uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, "")
		if err == nil || !strings.Contains(err.Error(), "kube-system/ingress-uid") || !strings.Contains(err.Error(), "lowercase") {
			t.Errorf("invalid stored uid %q: NamingUID = %q, %v; want an error naming the ConfigMap", bad, uid, err)
		}
		if stored, _ := e.storedUID(t); stored != bad {
			t.Errorf("invalid stored uid %q was overwritten with %q", bad, stored)
		}
	}

	// A new UID is stored, and read back by the next start.
	e = newUIDEnv(t)
	uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, "")
	if err != nil || !hex16.MatchString(uid) {
		t.Fatalf("created: %q %v", uid, err)
	}
	if again, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, ""); err != nil || again != uid {
		t.Errorf("second start read %q, want the stored %q (%v)", again, uid, err)
	}
}

// TestNamingUIDListingFails: without a NEG listing nothing is invented or stored.
func TestNamingUIDListingFails(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	e := newUIDEnv(t)
	e.srv.InjectFault(fakegce.Fault{Method: "compute.networkEndpointGroups.aggregatedList", Code: 403, Reason: "forbidden"})
	if uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, ""); err == nil || !strings.Contains(err.Error(), "listing NEGs") {
		t.Errorf("NamingUID = %q, %v; want the listing error", uid, err)
	}
	if _, exists := e.storedUID(t); exists {
		t.Error("a UID was stored although the NEGs could not be listed")
	}
}

func TestSample(t *testing.T) {
	if got := sample([]string{"c", "a", "b"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("sample = %v", got)
	}
	if got := sample([]string{"e", "d", "c", "b", "a"}); !slices.Equal(got, []string{"a", "b", "c", "and 2 more"}) {
		t.Errorf("sample = %v", got)
	}
}

// TestNamingUIDContextCanceled: a Kubernetes call ending with the context (a shutdown during
// start) is an error, not an empty naming UID: retry.OnError alone returns nil when the first
// attempt's error wraps context.Canceled (wait.Interrupted counts it as an interruption).
func TestNamingUIDContextCanceled(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	e := newUIDEnv(t)
	e.kube.PrependReactor("get", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("Get \"https://apiserver/api/v1/namespaces/kube-system/configmaps/ingress-uid\": %w", context.Canceled)
	})
	if uid, err := NamingUID(ctx, e.kube, e.cloud, testClusterUID, ""); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("NamingUID = %q, %v; want the context's error", uid, err)
	}
}
