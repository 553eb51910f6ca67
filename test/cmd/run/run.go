package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/stack"
)

type runOptions struct {
	dir, gceListen, manifest string
	// bindingManifest is a NetworkEndpointGroupBinding of the sample app's NEGs pre-created as
	// Terraform would (binding.go); "" (and hybrid mode) leaves bindings out.
	bindingManifest string
	// hybrid runs the nodes as a cluster outside Google Cloud with hybrid NEGs (hybrid.go).
	hybrid bool
	// dualStack makes the nodes and pods dual-stack (stack.Options.DualStack).
	dualStack bool
}

// session is what start brought up.
type session struct {
	st                  *stack.Stack
	ctrl                *stack.Controller
	kubectl, kubeconfig string
	status              annotation.Status
	// frontend is the emulated load balancer's address (hybrid only).
	frontend string
	// bindingZones are the zones of the pre-created NEG the sample binding binds (none: no binding).
	bindingZones []string
}

func run(ctx context.Context, o runOptions) error {
	s, err := start(ctx, o)
	if s != nil {
		defer func() {
			say("stopping everything")
			s.st.Stop()
		}()
	}
	if err != nil {
		return err
	}
	if o.hybrid {
		printHybrid(s)
	}
	printWhereToLook(s)
	<-ctx.Done()
	return nil
}

// start brings the stack and the controller up, applies the sample app and waits until its NEGs
// hold every pod (hybrid: and serve through the emulated load balancer). A non-nil session
// must be stopped (session.st.Stop), also when the error is not nil.
func start(ctx context.Context, o runOptions) (*session, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen := o.gceListen
	if ln, err := net.Listen("tcp", listen); err != nil {
		listen = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	say("starting the local control plane (etcd, kube-apiserver, kube-controller-manager), fakegce and the pod simulator")
	opts := stack.Options{
		WorkDir:   dir,
		GCEListen: listen,
		GCE:       fakegce.Config{OperationLatency: 50 * time.Millisecond, HealthMode: "fixed"},
		DualStack: o.dualStack,
	}
	if o.hybrid {
		opts = hybridStackOptions(opts)
	}
	binding := o.bindingManifest != "" && !o.hybrid
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &session{st: st, kubeconfig: filepath.Join(dir, "kubeconfig"), kubectl: filepath.Join(st.Cluster.BinDir, "kubectl")}
	if err := copyFile(st.Cluster.Kubeconfig, s.kubeconfig); err != nil {
		return s, err
	}
	// The CRD and the manifests' RBAC, bound to the controller's own user, which it runs as.
	var components []string
	if binding {
		components = append(components, "negbinding")
	}
	if err := st.InstallControllerManifests(ctx, "neg-controller", components...); err != nil {
		return s, fmt.Errorf("installing manifests: %w", err)
	}
	// The defaults a user gets: every period as shipped, leader election on, its Lease in the
	// controller's namespace (what the Deployment's POD_NAMESPACE gives).
	args := []string{"--leader-elect-namespace=neg-controller"}
	if o.hybrid {
		args = append(args, hybridControllerArgs(st.Region)...)
	}
	if binding {
		args = append(args, "--enable-negbinding")
		if s.bindingZones, err = createBindingNEGs(ctx, st); err != nil {
			return s, err
		}
		say("created NEG %s in %v through the Compute API, as Terraform would, for the sample binding", bindingNEG, s.bindingZones)
	}
	if s.ctrl, err = st.StartController(st.Cluster.ControllerKubeconfig, args...); err != nil {
		return s, err
	}
	say("neg-controller started (pid %d, log %s)", s.ctrl.PID(), s.ctrl.LogPath)
	if err := applyManifest(ctx, s, o.manifest); err != nil {
		return s, err
	}
	if binding {
		if err := applyManifest(ctx, s, o.bindingManifest); err != nil {
			return s, err
		}
	}
	say("waiting until the NEGs of default/web hold every pod")
	if s.status, err = waitSynced(ctx, st, s.ctrl, s.bindingZones); err != nil {
		return s, err
	}
	if o.hybrid {
		if err := checkHybridNEGs(ctx, st, s.status); err != nil {
			return s, err
		}
		if s.frontend, err = serveHybrid(ctx, st, s.ctrl); err != nil {
			return s, err
		}
	}
	return s, nil
}

// waitSynced waits until default/web has a neg-status and its NEGs — and the bound NEG in
// bindingZones — hold exactly the pods' endpoints (6 ready pods on port 8080).
func waitSynced(ctx context.Context, st *stack.Stack, ctrl *stack.Controller, bindingZones []string) (annotation.Status, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, ok := synced(ctx, st, bindingZones)
		if ok {
			return status, nil
		}
		if ctrl.Exited() {
			return status, fmt.Errorf("neg-controller exited:\n%s", ctrl.LogTail(30))
		}
		if time.Now().After(deadline) {
			return status, fmt.Errorf("NEGs not synced after 2 minutes; controller log:\n%s", ctrl.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return status, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func synced(ctx context.Context, st *stack.Stack, bindingZones []string) (annotation.Status, bool) {
	svc, err := st.Kube.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return annotation.Status{}, false
	}
	status, err := annotation.ParseStatus(svc.Annotations[annotation.NEGStatusKey])
	if err != nil || len(status.Zones) == 0 {
		return status, false
	}
	pods, err := st.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return status, false
	}
	want := map[string]bool{}
	for _, p := range pods.Items {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil && podReady(&p) {
			want[p.Status.PodIP] = true
		}
	}
	if len(want) != 6 {
		return status, false
	}
	holds := func(name string, zones []string) bool {
		got := 0
		for _, z := range zones {
			eps, _ := st.GCE.NEGEndpoints(z, name)
			for _, e := range eps {
				if !want[e.IP] || e.Port != 8080 {
					return false
				}
				got++
			}
		}
		return got == len(want)
	}
	return status, holds(status.NetworkEndpointGroups["80"], status.Zones) && (len(bindingZones) == 0 || holds(bindingNEG, bindingZones))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func printWhereToLook(s *session) {
	st, kubectl := s.st, s.kubectl
	zones := append([]string(nil), s.status.Zones...)
	sort.Strings(zones)
	name := s.status.NetworkEndpointGroups["80"]
	fmt.Printf(`
==> neg-controller is running. The sample Service default/web has NEG %q in zones %v.
`, name, zones)
	if len(s.bindingZones) > 0 {
		fmt.Printf(`    The NetworkEndpointGroupBinding default/web keeps the pre-created NEG %q in %v in step with it.
`, bindingNEG, s.bindingZones)
	}
	if st.Nodes[0].IPv6 != "" {
		fmt.Printf(`    Nodes and pods are dual-stack (pod 10.A.B.C also has fd20::<AB>:<A>:<BC>); Services stay IPv4
    unless they set ipFamilyPolicy (the control plane serves both families).
`)
	}
	fmt.Printf(`
  kubeconfig:        %s
  kubectl:           %s   (matches the server version)
  controller log:    %s
  fakegce:           %s  (Compute API under /compute/v1/, admin API under /admin/)

Try:
  export KUBECONFIG=%s
  %s get svc web -o jsonpath='{.metadata.annotations.cloud\.google\.com/neg-status}'; echo
  %s scale deployment web --replicas=12
  curl -s -X POST %s/compute/v1/projects/%s/zones/%s/networkEndpointGroups/%s/listNetworkEndpoints
  curl -s %s/admin/state | head -c 2000
`, s.kubeconfig, kubectl, st.Controller().LogPath, st.GCEURL,
		s.kubeconfig, kubectl, kubectl, st.GCEURL, st.Project, zones[0], name, st.GCEURL)
	if len(s.bindingZones) > 0 {
		fmt.Printf("  %s get negbinding web\n", kubectl)
	}
	fmt.Printf("\nPress Ctrl-C to stop and clean up.\n")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

func say(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}
