package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/localcluster"
	"github.com/neg-controller/neg-controller/test/podsim"
)

// Options configures Start. Zero values give the defaults used by `make run`.
type Options struct {
	// ControllerBinary is the neg-controller executable. Empty: $NEG_BIN_DIR/neg-controller,
	// else ./bin/neg-controller from the module root.
	ControllerBinary string
	// WorkDir receives kubeconfigs and logs. Empty: a new temporary directory removed by Stop.
	WorkDir string
	// GCE configures the emulator. Project, Region and Zones default to test-project,
	// us-central1 and its zones a, b, c.
	GCE fakegce.Config
	// GCEListen is the emulator's listen address. Empty: 127.0.0.1:0 (a free port).
	GCEListen string
	// NodeZones are the zones that get simulated nodes at start. Empty: every GCE zone.
	NodeZones []string
	// ExternalNodes makes the simulated nodes a cluster outside Google Cloud, as hybrid NEGs
	// serve (podsim NodeSpec.External): no Compute Engine instances, no providerID, and
	// NodeZones (then required) are the other cloud's zone labels, e.g. eu-west-1a, which the
	// controller maps with --zone-mapping.
	ExternalNodes bool
	// DualStack makes the simulated nodes dual-stack (podsim NodeSpec.DualStack): nodes get an
	// IPv6 pod CIDR and InternalIP, pods IPv4 and IPv6 addresses (both served on one loopback
	// address), instances an internal IPv6 range; GCE.DefaultStackType becomes IPV4_IPV6 unless
	// set (IPV4_ONLY is refused). Services stay IPv4 unless they ask for IPv6 (ipFamilyPolicy);
	// the control plane accepts both (localcluster.ServiceCIDRs).
	DualStack bool
	// NodesPerZone is the number of simulated nodes per zone. Zero: 2.
	NodesPerZone int
	// PodReadyDelay is how long simulated pods take to become ready.
	PodReadyDelay time.Duration
	// PodMaxGrace caps how long deleted pods stay Terminating. Zero: 2 s.
	PodMaxGrace time.Duration
	// ServePods makes simulated pods serve HTTP on their loopback addresses, with readiness from
	// httpGet readiness probes and preStop sleeps honoured (podsim Config.Serve). Unless GCE.
	// HealthMode is set, the emulator then probes endpoints for real (fakegce.HealthModeProbe),
	// so health checks and load balancer frontends (Stack.GCE.AddFrontend) see the pods.
	// preStop sleeps and draining are bounded by PodMaxGrace: raise it for rollout tests.
	ServePods bool
}

// Stack is a running local environment.
type Stack struct {
	Cluster *localcluster.Cluster
	Kube    kubernetes.Interface
	GCE     *fakegce.Server
	// GCEURL is the emulator's base URL (the controller's --gce-endpoint).
	GCEURL  string
	Compute *compute.Service
	Nodes   []podsim.NodeSpec
	Project string
	Region  string
	WorkDir string

	opts       Options
	ownWorkDir bool
	httpServer *http.Server
	podsimStop context.CancelFunc
	podsimDone chan error
	controller *Controller
	// extraControllers are the ones StartExtraController started.
	extraControllers []*Controller
}

// Start brings everything up except the controller (see StartController).
func Start(ctx context.Context, opts Options) (*Stack, error) {
	logger := klog.FromContext(ctx).WithName("stack")
	s := &Stack{opts: opts}
	if err := s.prepare(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()

	t0 := time.Now()
	cl, err := localcluster.Start(ctx, localcluster.Options{WorkDir: filepath.Join(s.WorkDir, "cluster"), LogDir: filepath.Join(s.WorkDir, "logs")})
	if err != nil {
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	s.Cluster = cl
	logger.Info("Control plane ready", "apiserver", cl.APIServerURL, "elapsed", time.Since(t0).Round(time.Millisecond))
	if s.Kube, err = kubernetes.NewForConfig(cl.RESTConfig); err != nil {
		return nil, err
	}
	if err := s.startGCE(ctx); err != nil {
		return nil, err
	}
	logger.Info("fakegce ready", "url", s.GCEURL)

	s.Nodes = podsim.DefaultNodes(s.opts.NodeZones, s.opts.NodesPerZone)
	for i := range s.Nodes {
		s.Nodes[i].External = s.opts.ExternalNodes
		if s.opts.DualStack {
			if s.Nodes[i], err = s.Nodes[i].DualStack(); err != nil {
				return nil, err
			}
		}
	}
	psCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.podsimStop = cancel
	s.podsimDone = make(chan error, 1)
	go func() {
		s.podsimDone <- podsim.Run(psCtx, s.Kube, podsim.Config{
			Project: s.Project, Nodes: s.Nodes, Compute: s.Compute,
			ReadyDelay: s.opts.PodReadyDelay, MaxGrace: s.opts.PodMaxGrace, Serve: s.opts.ServePods,
		})
	}()
	if err := s.waitNodes(ctx); err != nil {
		return nil, err
	}
	logger.Info("Pod simulator ready", "nodes", len(s.Nodes))
	ok = true
	return s, nil
}

func (s *Stack) prepare() error {
	o := &s.opts
	if o.GCE.Project == "" {
		o.GCE.Project = "test-project"
	}
	if o.GCE.Region == "" {
		o.GCE.Region = "us-central1"
	}
	if len(o.GCE.Zones) == 0 {
		o.GCE.Zones = []string{o.GCE.Region + "-a", o.GCE.Region + "-b", o.GCE.Region + "-c"}
	}
	if len(o.NodeZones) == 0 {
		if o.ExternalNodes {
			return errors.New("stack: ExternalNodes needs NodeZones (the other cloud's zone labels)")
		}
		o.NodeZones = o.GCE.Zones
	}
	if o.GCEListen == "" {
		o.GCEListen = "127.0.0.1:0"
	}
	if o.NodesPerZone == 0 {
		o.NodesPerZone = 2
	}
	if o.PodMaxGrace == 0 {
		o.PodMaxGrace = 2 * time.Second
	}
	if o.ServePods && o.GCE.HealthMode == "" {
		o.GCE.HealthMode = fakegce.HealthModeProbe
	}
	if o.DualStack {
		switch o.GCE.DefaultStackType {
		case "":
			o.GCE.DefaultStackType = fakegce.StackDual
		case fakegce.StackIPv4Only:
			return errors.New("stack: DualStack nodes need a dual-stack subnetwork, not GCE.DefaultStackType IPV4_ONLY")
		}
	}
	s.Project, s.Region = o.GCE.Project, o.GCE.Region
	if o.WorkDir == "" {
		d, err := os.MkdirTemp("", "neg-stack-")
		if err != nil {
			return err
		}
		o.WorkDir, s.ownWorkDir = d, true
	}
	s.WorkDir = o.WorkDir
	return os.MkdirAll(filepath.Join(s.WorkDir, "logs"), 0o755)
}

func (s *Stack) startGCE(ctx context.Context) error {
	s.GCE = fakegce.New(s.opts.GCE)
	ln, err := net.Listen("tcp", s.opts.GCEListen)
	if err != nil {
		return fmt.Errorf("fakegce listen: %w", err)
	}
	s.GCEURL = "http://" + ln.Addr().String()
	s.httpServer = &http.Server{Handler: s.GCE, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpServer.Serve(ln) }()
	s.Compute, err = compute.NewService(ctx, option.WithEndpoint(s.GCEURL+"/compute/v1/"), option.WithoutAuthentication())
	return err
}

func (s *Stack) waitNodes(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.podsimDone:
			return fmt.Errorf("pod simulator stopped: %v", err)
		default:
		}
		got := 0
		for _, n := range s.Nodes {
			if n.External {
				if _, err := s.Kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err == nil {
					got++
				}
			} else if _, err := s.Compute.Instances.Get(s.Project, n.Zone, n.Name).Context(ctx).Do(); err == nil {
				got++
			}
		}
		if got == len(s.Nodes) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("timed out waiting for the pod simulator to register nodes")
}

// Stop stops the controller, the pod simulator, the emulator and the control plane, in that
// order, and removes a temporary work directory. It is safe to call more than once.
func (s *Stack) Stop() {
	if s.controller != nil {
		_ = s.controller.Stop(10 * time.Second)
		s.controller = nil
	}
	for _, c := range s.extraControllers {
		_ = c.Stop(10 * time.Second)
	}
	s.extraControllers = nil
	if s.podsimStop != nil {
		s.podsimStop()
		<-s.podsimDone
		s.podsimStop = nil
	}
	if s.httpServer != nil {
		_ = s.httpServer.Close()
		s.httpServer = nil
	}
	if s.GCE != nil {
		s.GCE.Close()
	}
	if s.Cluster != nil {
		_ = s.Cluster.Stop()
		s.Cluster = nil
	}
	if s.ownWorkDir {
		_ = os.RemoveAll(s.WorkDir)
		s.ownWorkDir = false
	}
}
