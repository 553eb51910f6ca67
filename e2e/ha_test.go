//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/stack"
)

// The HA test's Lease is the default one in the manifests' namespace, the one their RBAC lets
// the controller's identity use; its timing is short, so that a takeover happens within seconds.
const (
	haLeaseNamespace = "neg-controller"
	haLeaseName      = "neg-controller"
)

var haLease = []string{"--leader-elect-namespace=" + haLeaseNamespace, "--leader-elect-lease-duration=4s",
	"--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=1s"}

// TestHA: two controllers with leader election; the leader is killed (SIGKILL) while it attaches
// a few hundred endpoints through slow GCE calls; the standby takes the Lease over and the NEGs
// converge exactly, with no attach or detach rejected (strict mode rejects duplicates) and no
// failed call. Then a graceful stop hands the Lease over at once. The replicas run as the
// suite's controller does, with the RBAC of manifests/. The suite's single controller is stopped
// for the test and restored afterwards.
func TestHA(t *testing.T) {
	if c := env.Controller(); c != nil {
		if err := c.Stop(15 * time.Second); err != nil {
			t.Logf("stopping the suite's controller: %v", err)
		}
	}
	var replicas []*stack.Controller
	t.Cleanup(func() {
		for _, c := range replicas {
			_ = c.Stop(15 * time.Second)
		}
		restartController(t) // the suite's controller, without leader election
	})
	flags := append(append(append([]string(nil), controllerFlags...), "--leader-elect=true"), haLease...)

	// The first replica (not tracked by env.Controller) becomes the leader; the second, tracked
	// (waitFor fails the test if it dies), stands by.
	leader, err := env.StartExtraController(controllerKubeconfig, flags...)
	if err != nil {
		t.Fatal(err)
	}
	replicas = append(replicas, leader)
	leaderID := waitForHolder(t, func(h string) bool { return h != "" && h == identityOf(t, leader) })
	standby, err := env.StartController(controllerKubeconfig, flags...)
	if err != nil {
		t.Fatal(err)
	}
	replicas = append(replicas, standby)
	standbyID := identityOf(t, standby)
	expectReady(t, standby)
	expectMetric(t, standby, "neg_controller_leader 0")
	expectMetric(t, leader, "neg_controller_leader 1")
	t.Logf("leader %s, standby %s", leaderID, standbyID)

	// Slow attaches, so the kill lands while calls are in flight.
	env.GCE.InjectFault(fakegce.Fault{Method: attachMethod, Latency: 1500 * time.Millisecond})
	t.Cleanup(env.GCE.ClearFaults)
	const pods = 300
	ns := newNamespace(t)
	mark := time.Now()
	createDeployment(t, ns, "web", pods, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	waitFor(t, 2*time.Minute, "the leader's first attach", func() (bool, string) {
		n := countCalls(attachMethod, mark)
		return n > 0, fmt.Sprintf("%d attach calls", n)
	})
	leader.Kill()
	killed := time.Now()
	attached := 0
	if st, ok := negStatus(t, ns, "web"); ok {
		for _, eps := range gceNEGs(st.NetworkEndpointGroups["80"]) {
			attached += len(eps)
		}
	}
	t.Logf("killed the leader with %d of %d endpoints attached", attached, pods)
	if attached >= pods {
		t.Fatalf("the leader had converged before it was killed; the test proves nothing")
	}

	waitForHolder(t, func(h string) bool { return h == standbyID })
	t.Logf("standby took over %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	name := expectSynced(t, ns, "web", "web", 80, 8080, pods, 3*time.Minute)
	env.GCE.ClearFaults()

	if bad := failedEndpointCalls(mark); len(bad) > 0 {
		t.Errorf("%d attach/detach calls were rejected, first: %+v", len(bad), bad[0])
	}
	evs, err := env.Kube.CoreV1().Events(ns).List(ctxFor(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Type == corev1.EventTypeWarning {
			t.Errorf("Warning event %s: %s", e.Reason, e.Message)
		}
	}
	expectReady(t, standby)
	expectMetric(t, standby, "neg_controller_leader 1")
	for _, z := range initialZones {
		n := len(gceNEGs(name)[z])
		expectMetric(t, standby, fmt.Sprintf(`neg_controller_attached_endpoints{neg=%q,zone=%q} %d`, name, z, n))
	}
	t.Logf("attach calls: %d, detach calls: %d", countCalls(attachMethod, mark), countCalls(detachMethod, mark))

	// A graceful stop releases the Lease once the controller has stopped: a new standby takes
	// over within a retry period or two, without waiting for the lease to expire.
	next, err := env.StartExtraController(controllerKubeconfig, flags...)
	if err != nil {
		t.Fatal(err)
	}
	replicas = append(replicas, next)
	nextID := identityOf(t, next)
	expectReady(t, next)
	stopped := time.Now()
	if err := standby.Stop(15 * time.Second); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	waitForHolder(t, func(h string) bool { return h == nextID })
	if took := time.Since(stopped); took > 4*time.Second {
		t.Errorf("handover after a graceful stop took %s, want less than the 4s lease duration", took)
	} else {
		t.Logf("graceful handover in %s", took.Round(100*time.Millisecond))
	}
	if !strings.Contains(readLog(t, standby), "Stopped leader election") {
		t.Errorf("stopped leader did not log the release:\n%s", standby.LogTail(20))
	}
}

var identityRE = regexp.MustCompile(`"Starting leader election".* identity="([^"]+)"`)

// identityOf returns the leader election identity a controller logged.
func identityOf(t *testing.T, c *stack.Controller) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := identityRE.FindStringSubmatch(readLog(t, c)); m != nil {
			return m[1]
		}
		if c.Exited() || time.Now().After(deadline) {
			t.Fatalf("no leader election identity in %s:\n%s", c.LogPath, c.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readLog(t *testing.T, c *stack.Controller) string {
	t.Helper()
	b, err := os.ReadFile(c.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitForHolder waits until the Lease's holder satisfies ok and returns it.
func waitForHolder(t *testing.T, ok func(holder string) bool) string {
	t.Helper()
	var holder string
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := env.Kube.CoordinationV1().Leases(haLeaseNamespace).Get(ctxFor(t), haLeaseName, metav1.GetOptions{})
		holder = ""
		if err == nil && l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if ok(holder) {
			return holder
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lease %s/%s: holder %q (err %v)", haLeaseNamespace, haLeaseName, holder, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape GETs path from the controller's metrics server.
func scrape(t *testing.T, c *stack.Controller, path string) (int, string) {
	t.Helper()
	base, err := c.MetricsURL(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectReady waits until the controller's /readyz answers 200.
func expectReady(t *testing.T, c *stack.Controller) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := scrape(t, c, "/readyz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of %s: %d %s", c.LogPath, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expectMetric waits until the controller's /metrics holds the line.
func expectMetric(t *testing.T, c *stack.Controller, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := scrape(t, c, "/metrics")
		if code == http.StatusOK && strings.Contains(body, "\n"+line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			var related []string
			name := line[:strings.IndexAny(line, "{ ")]
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, name) {
					related = append(related, l)
				}
			}
			t.Errorf("/metrics of %s lacks %q; has %q", c.LogPath, line, related)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
