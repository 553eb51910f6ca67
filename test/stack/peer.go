package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/test/localcluster"
	"github.com/neg-controller/neg-controller/test/podsim"
)

// PeerOptions configures StartPeer.
type PeerOptions struct {
	// Name tells the peer's files, nodes and logs apart, e.g. "peer". Required.
	Name string
	// NodeZones get NodesPerZone simulated nodes each. Empty: the zones of the stack's nodes.
	NodeZones    []string
	NodesPerZone int
	// PodCIDRBase is the second octet of the peer's pod ranges (10.<base>.<n>.0/24); node IPs
	// are 10.<base+1>.0.<n>. Pick values that do not overlap the stack's (10.64 and 10.1) nor
	// other peers'. Zero: 70.
	PodCIDRBase int
}

// Peer is a second cluster — its own control plane and pod simulator — whose nodes are
// instances in the stack's fakegce, so that two neg-controllers with different cluster UIDs
// share one Compute Engine project (backend services shared by two clusters).
type Peer struct {
	Name    string
	Cluster *localcluster.Cluster
	Kube    kubernetes.Interface
	Nodes   []podsim.NodeSpec

	stack      *Stack
	workDir    string
	podsimStop context.CancelFunc
	podsimDone chan error
	controller *Controller
}

// StartPeer starts a second control plane with its own simulated nodes registered in the
// stack's fakegce. Stop it with Peer.Stop (Stack.Stop does not).
func (s *Stack) StartPeer(ctx context.Context, o PeerOptions) (*Peer, error) {
	if o.Name == "" {
		return nil, errors.New("stack: PeerOptions.Name is required")
	}
	if len(o.NodeZones) == 0 {
		o.NodeZones = s.opts.NodeZones
	}
	if o.NodesPerZone == 0 {
		o.NodesPerZone = 1
	}
	if o.PodCIDRBase == 0 {
		o.PodCIDRBase = 70
	}
	p := &Peer{Name: o.Name, stack: s, workDir: filepath.Join(s.WorkDir, o.Name)}
	ok := false
	defer func() {
		if !ok {
			p.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(p.workDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	cl, err := localcluster.Start(ctx, localcluster.Options{WorkDir: filepath.Join(p.workDir, "cluster"), LogDir: filepath.Join(p.workDir, "logs")})
	if err != nil {
		return nil, fmt.Errorf("starting the control plane of %s: %w", o.Name, err)
	}
	p.Cluster = cl
	if p.Kube, err = kubernetes.NewForConfig(cl.RESTConfig); err != nil {
		return nil, err
	}
	n := 0
	for _, z := range o.NodeZones {
		for i := range o.NodesPerZone {
			n++
			p.Nodes = append(p.Nodes, podsim.NodeSpec{
				Name:    fmt.Sprintf("%s-node-%s-%d", o.Name, z, i),
				Zone:    z,
				PodCIDR: fmt.Sprintf("10.%d.%d.0/24", o.PodCIDRBase, n),
				IP:      fmt.Sprintf("10.%d.0.%d", o.PodCIDRBase+1, n),
			})
		}
	}
	psCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.podsimStop = cancel
	p.podsimDone = make(chan error, 1)
	go func() {
		p.podsimDone <- podsim.Run(klog.NewContext(psCtx, klog.FromContext(ctx).WithName(o.Name)), p.Kube, podsim.Config{
			Project: s.Project, Nodes: p.Nodes, Compute: s.Compute,
			ReadyDelay: s.opts.PodReadyDelay, MaxGrace: s.opts.PodMaxGrace,
		})
	}()
	if err := p.waitNodes(ctx); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

func (p *Peer) waitNodes(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.podsimDone:
			return fmt.Errorf("pod simulator of %s stopped: %v", p.Name, err)
		default:
		}
		got := 0
		for _, n := range p.Nodes {
			if _, err := p.stack.Compute.Instances.Get(p.stack.Project, n.Zone, n.Name).Context(ctx).Do(); err == nil {
				got++
			}
		}
		if got == len(p.Nodes) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out waiting for the nodes of %s", p.Name)
}

// StartController runs a neg-controller for the peer's cluster against the stack's fakegce
// with extra flags; its log is <workdir>/<name>/logs/neg-controller-N.log. Only one controller
// per peer runs at a time.
func (p *Peer) StartController(extra ...string) (*Controller, error) {
	if p.controller != nil && !p.controller.Exited() {
		return nil, errors.New("the peer's controller is already running")
	}
	bin, err := p.stack.ControllerBinary()
	if err != nil {
		return nil, err
	}
	var logPath string
	for i := 1; ; i++ {
		logPath = filepath.Join(p.workDir, "logs", fmt.Sprintf("neg-controller-%d.log", i))
		if _, err := os.Stat(logPath); os.IsNotExist(err) {
			break
		}
	}
	c, err := startController(bin, p.stack.ControllerArgs(p.Cluster.Kubeconfig, extra...), logPath)
	if err != nil {
		return nil, err
	}
	p.controller = c
	return c, nil
}

// Controller returns the controller last started for the peer, or nil.
func (p *Peer) Controller() *Controller { return p.controller }

// Stop stops the peer's controller, pod simulator and control plane. The nodes' instances stay
// in fakegce. It is safe to call more than once.
func (p *Peer) Stop() {
	if p.controller != nil {
		_ = p.controller.Stop(10 * time.Second)
		p.controller = nil
	}
	if p.podsimStop != nil {
		p.podsimStop()
		<-p.podsimDone
		p.podsimStop = nil
	}
	if p.Cluster != nil {
		_ = p.Cluster.Stop()
		p.Cluster = nil
	}
}
