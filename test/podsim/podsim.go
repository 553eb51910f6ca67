package podsim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// NodeSpec describes one simulated node.
type NodeSpec struct {
	// Name is the Node's and the Compute Engine instance's name.
	Name string
	// Zone is the node's zone, e.g. us-central1-a; its region is the zone without the last
	// "-suffix".
	Zone string
	// PodCIDR is the IPv4 range pod IPs come from, e.g. 10.64.1.0/24 (pods get .2 to .254). It
	// must not be loopback: EndpointSlice validation rejects 127.0.0.0/8.
	PodCIDR string
	// IP is the node's InternalIP and the instance's networkIP, e.g. 10.1.0.11.
	IP string
	// IPv6 and PodCIDRv6 make the node dual-stack (both or neither; NodeSpec.DualStack derives
	// them, see dualstack.go): IPv6 is its second InternalIP and the start of its instance's
	// internal IPv6 range (ipv6Address, a /96), PodCIDRv6 its IPv6 pod range (spec.podCIDRs[1],
	// e.g. fd20::4001:40:0/112, in fd00::/8). A pod's IPv6 address is its IPv4 address's last
	// three bytes in PodCIDRv6, so both reach one loopback listener. The instance needs a
	// dual-stack subnetwork (fakegce Config.DefaultStackType IPV4_IPV6).
	IPv6      string
	PodCIDRv6 string
	// External makes it a node outside Google Cloud (EKS, AKS, on-prem), as hybrid NEGs serve:
	// no Compute Engine instance and no providerID; Zone is then the other cloud's zone label
	// (e.g. eu-west-1a) and the region label is Zone without its trailing letters (eu-west-1).
	External bool
}

func (n NodeSpec) validate() error {
	if n.Name == "" || n.Zone == "" {
		return fmt.Errorf("node %+v: name and zone are required", n)
	}
	ip, err := netip.ParseAddr(n.IP)
	if err != nil || !ip.Is4() || ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
		return fmt.Errorf("node %s: IP %q must be a routable IPv4 address (not loopback)", n.Name, n.IP)
	}
	p, err := netip.ParsePrefix(n.PodCIDR)
	if err != nil || !p.Addr().Is4() || p.Addr().IsLoopback() {
		return fmt.Errorf("node %s: pod CIDR %q must be a non-loopback IPv4 prefix", n.Name, n.PodCIDR)
	}
	return n.validateIPv6(p)
}

// MaxDefaultNodes is how many nodes DefaultNodes' address plan holds: 254 per second octet of
// the pod ranges, 10.64 to 10.69 (10.70 and 10.71 are stack.Peer's default ranges, 10.96 the
// control plane's Service range), i.e. about 385,000 pods of 253 addresses per node.
const MaxDefaultNodes = 6 * 254

// DefaultNodeAddresses returns the pod CIDR and IP of node number n (1 ≤ n ≤ MaxDefaultNodes)
// in DefaultNodes' plan. With i = n-1, hi = i/254 and lo = i%254+1, the node gets pod CIDR
// 10.<64+hi>.<lo>.0/24 and IP 10.1.<hi>.<lo>: nodes 1 to 254 get 10.64.N.0/24 and 10.1.0.N,
// node 255 gets 10.65.1.0/24 and 10.1.1.1. Every pod IP is in 10.0.0.0/8, so
// fakegce.LoopbackFor reaches it at 127.<64+hi>.<lo>.<host>. It panics for n out of range.
func DefaultNodeAddresses(n int) (podCIDR, ip string) {
	if n < 1 || n > MaxDefaultNodes {
		panic(fmt.Sprintf("podsim: node number %d outside the default address plan (1 to %d)", n, MaxDefaultNodes))
	}
	hi, lo := (n-1)/254, (n-1)%254+1
	return fmt.Sprintf("10.%d.%d.0/24", 64+hi, lo), fmt.Sprintf("10.1.%d.%d", hi, lo)
}

// DefaultNodes returns perZone nodes in each zone, named node-<zone>-<i> (i from 0). Node
// number N (from 1, in zone order) gets DefaultNodeAddresses(N): pod CIDR 10.64.N.0/24 and IP
// 10.1.0.N for the first 254, then on into 10.65 and up, at most MaxDefaultNodes in all (it
// panics beyond); pick N above that count for nodes added later.
func DefaultNodes(zones []string, perZone int) []NodeSpec {
	if len(zones)*perZone > MaxDefaultNodes {
		panic(fmt.Sprintf("podsim: %d zones × %d nodes exceed the default address plan's %d nodes", len(zones), perZone, MaxDefaultNodes))
	}
	var out []NodeSpec
	n := 0
	for _, z := range zones {
		for i := range perZone {
			n++
			cidr, ip := DefaultNodeAddresses(n)
			out = append(out, NodeSpec{Name: fmt.Sprintf("node-%s-%d", z, i), Zone: z, PodCIDR: cidr, IP: ip})
		}
	}
	return out
}

// Config configures Run.
type Config struct {
	// Project is the GCE project in each node's providerID (gce://project/zone/name) and, with
	// Compute set, where the instances are created. Required.
	Project string
	// Nodes are registered by Run before it starts handling pods.
	Nodes []NodeSpec
	// Compute, when set, is used to register each node as a Compute Engine instance (for
	// example in fakegce). Nil: Kubernetes objects only.
	Compute *compute.Service
	// ReadyDelay is how long after its containers "start" a pod's containers become ready.
	ReadyDelay time.Duration
	// MaxGrace caps how long a deleted pod stays Terminating: podsim finishes the deletion after
	// min(the pod's grace period, MaxGrace). Zero: 30 s. Negative: at once.
	MaxGrace time.Duration
	// Workers is the number of pods handled in parallel. Zero: 2.
	Workers int
	// DualStack makes every node of Nodes without IPv6 fields dual-stack by the plan of
	// NodeSpec.DualStack: nodes get spec.podCIDRs [IPv4, IPv6] and an IPv6 InternalIP, pods
	// status.podIPs [IPv4, IPv6], instances an internal IPv6 range.
	DualStack bool
	// Serve runs, for every running pod, an HTTP server per container port on the loopback
	// address its IP routes to (fakegce.LoopbackFor), drives readiness from httpGet readiness
	// probes and honours preStop sleeps on deletion; see serve.go.
	Serve bool
}

// Run registers cfg.Nodes and then plays kubelet and scheduler for pods until ctx is done. It
// returns nil when ctx ends and an error only if node registration or informer setup fails.
func Run(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	if cfg.Project == "" {
		return errors.New("podsim: Config.Project is required")
	}
	if cfg.MaxGrace == 0 {
		cfg.MaxGrace = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	logger := klog.FromContext(ctx).WithName("podsim")
	ctx = klog.NewContext(ctx, logger)
	if cfg.DualStack {
		nodes := make([]NodeSpec, len(cfg.Nodes))
		for i, n := range cfg.Nodes {
			var err error
			if nodes[i], err = n.DualStack(); err != nil {
				return fmt.Errorf("podsim: %w", err)
			}
		}
		cfg.Nodes = nodes
	}
	if err := addNodes(ctx, client, cfg); err != nil {
		return err
	}
	return newSim(client, cfg, logger).run(ctx)
}

// registerWorkers bounds how many nodes Run registers at once: each waits for its instance's
// insert operation, so hundreds of nodes one after the other would take minutes.
const registerWorkers = 16

// addNodes registers cfg.Nodes with AddNode, registerWorkers at a time, and returns every error.
func addNodes(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	errs := make([]error, len(cfg.Nodes))
	sem := make(chan struct{}, registerWorkers)
	var wg sync.WaitGroup
	for i, n := range cfg.Nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = AddNode(ctx, client, cfg.Compute, cfg.Project, n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

const nodeNameIndex = "spec.nodeName"

// sim is the running simulator. Pods are handled by key (namespace/name) through a workqueue, so
// one pod is never handled by two workers at once.
type sim struct {
	client kubernetes.Interface
	cfg    Config
	logger klog.Logger
	now    func() time.Time

	pods     corelisters.PodLister
	podIndex cache.Indexer
	nodes    corelisters.NodeLister
	queue    workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	ipam   *ipam
	states map[string]*podState // pod key → what podsim did for it

	serveWG sync.WaitGroup // goroutines of served pods (Config.Serve)
}

// podState is podsim's memory of one pod (identified by key and UID).
type podState struct {
	uid           string
	node          string      // bound to, as far as podsim knows
	startedAt     time.Time   // containers "started"; ContainersReady after ReadyDelay
	deletingSince time.Time   // first seen with deletionTimestamp
	rt            *podRuntime // servers and probers (Config.Serve); nil if none
}

func newSim(client kubernetes.Interface, cfg Config, logger klog.Logger) *sim {
	return &sim{
		client: client,
		cfg:    cfg,
		logger: logger,
		now:    time.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "podsim"}),
		ipam:   newIPAM(),
		states: map[string]*podState{},
	}
}

func (s *sim) run(ctx context.Context) error {
	defer s.queue.ShutDown()
	factory := informers.NewSharedInformerFactory(s.client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	nodeInformer := factory.Core().V1().Nodes().Informer()
	if err := podInformer.AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return err
	}
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.enqueue,
		UpdateFunc: func(_, obj any) { s.enqueue(obj) },
		DeleteFunc: s.enqueue,
	}); err != nil {
		return err
	}
	if _, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.nodeChanged,
		UpdateFunc: func(_, obj any) { s.nodeChanged(obj) },
	}); err != nil {
		return err
	}
	s.pods = factory.Core().V1().Pods().Lister()
	s.podIndex = podInformer.GetIndexer()
	s.nodes = factory.Core().V1().Nodes().Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced, nodeInformer.HasSynced) {
		return nil // ctx ended
	}
	s.logger.Info("Simulating kubelets", "nodes", len(s.cfg.Nodes), "readyDelay", s.cfg.ReadyDelay, "maxGrace", s.cfg.MaxGrace)

	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() {
			for s.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	s.queue.ShutDown()
	wg.Wait()
	s.stopServing()
	return nil
}

func (s *sim) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		s.logger.Error(err, "Cannot key pod")
		return
	}
	s.queue.Add(key)
}

// nodeChanged re-examines the pods bound to a podsim node, and the unbound pods that may now fit.
func (s *sim) nodeChanged(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok || !isManaged(node) {
		return
	}
	for _, nodeName := range []string{node.Name, ""} {
		objs, err := s.podIndex.ByIndex(nodeNameIndex, nodeName)
		if err != nil {
			s.logger.Error(err, "Listing pods by node", "node", nodeName)
			continue
		}
		for _, o := range objs {
			s.enqueue(o)
		}
	}
}

func (s *sim) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	after, err := s.sync(ctx, key)
	switch {
	case err != nil && ctx.Err() == nil:
		s.logger.Error(err, "Handling pod failed; will retry", "pod", key)
		s.queue.AddRateLimited(key)
	default:
		s.queue.Forget(key)
		if after > 0 {
			s.queue.AddAfter(key, after)
		}
	}
	return true
}

// state returns the pod's state, starting afresh (and releasing its IP) when the pod under this
// key was replaced. Callers hold s.mu.
func (s *sim) state(key, uid string) *podState {
	st := s.states[key]
	if st != nil && st.uid == uid {
		return st
	}
	s.ipam.release(key)
	if st != nil && st.rt != nil {
		st.rt.stop()
	}
	st = &podState{uid: uid}
	s.states[key] = st
	return st
}

// forget drops what podsim knows about a pod that is gone or finished, freeing its IP.
func (s *sim) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ipam.release(key)
	if st := s.states[key]; st != nil && st.rt != nil {
		st.rt.stop()
	}
	delete(s.states, key)
}

// load counts the non-terminating pods podsim bound or saw bound, per node. Callers hold s.mu.
func (s *sim) load() map[string]int {
	m := map[string]int{}
	for _, st := range s.states {
		if st.node != "" && st.deletingSince.IsZero() {
			m[st.node]++
		}
	}
	return m
}
