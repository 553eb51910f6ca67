package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// DefaultControllers are the kube-controller-manager controllers Start runs unless
// Options.Controllers says otherwise: EndpointSlices, garbage collection of their owners'
// dependents, namespace deletion, and Deployment → ReplicaSet → Pod.
func DefaultControllers() []string {
	return []string{"endpointslice", "garbagecollector", "namespace", "deployment", "replicaset"}
}

// ServiceCIDRs is kube-apiserver's --service-cluster-ip-range: IPv4 first, so a Service without
// ipFamilyPolicy stays single-stack IPv4 as before, and an IPv6 range, so Services with
// ipFamilyPolicy PreferDualStack or RequireDualStack (and IPv6-only ones) are accepted and the
// EndpointSlice controller gives them an IPv6 slice from the pods' IPv6 addresses (test/podsim
// dual-stack nodes). The IPv6 range is a /108, the largest the classic allocator takes.
// kube-controller-manager needs no matching flag: its node IPAM controller, the only one that
// reads --service-cluster-ip-range and --cluster-cidr, does not run (podsim sets pod CIDRs).
const ServiceCIDRs = "10.96.0.0/16,fd00:10:96::/108"

// Options configures Start. The zero value is usable: binaries come from FindBinDir and all
// files go to a fresh temporary directory.
type Options struct {
	// BinDir holds etcd, kube-apiserver and kube-controller-manager. Empty: FindBinDir().
	BinDir string
	// WorkDir receives the PKI, the kubeconfigs and (by default) the logs. Empty: a new temporary
	// directory, on /dev/shm when available, removed by Stop. A given WorkDir is created if
	// needed and left in place by Stop. etcd's data always goes to its own tmpfs directory,
	// removed by Stop (or, if this process dies first, by the next Start).
	WorkDir string
	// LogDir receives etcd.log, kube-apiserver.log and kube-controller-manager.log.
	// Empty: WorkDir/logs.
	LogDir string
	// Controllers is kube-controller-manager's --controllers list. Empty: DefaultControllers().
	Controllers []string
	// APIServerArgs and ControllerManagerArgs are appended to the generated flags (later flags
	// win), e.g. "--v=4" or "--feature-gates=…".
	APIServerArgs         []string
	ControllerManagerArgs []string
	// StartTimeout bounds Start when ctx has no earlier deadline. Zero: 2 minutes.
	StartTimeout time.Duration
}

// Cluster is a running control plane. Its exported fields are read-only.
type Cluster struct {
	// Kubeconfig is the path of a self-contained kubeconfig for the "admin" user
	// (system:masters), and RESTConfig the same credentials for client-go.
	Kubeconfig string
	RESTConfig *rest.Config
	// ControllerKubeconfig and ControllerRESTConfig authenticate as user "neg-controller" with no
	// groups: nothing is allowed until RBAC objects grant it.
	ControllerKubeconfig string
	ControllerRESTConfig *rest.Config
	// APIServerURL is https://127.0.0.1:<port>; CAData is the PEM CA that signed its certificate.
	APIServerURL string
	CAData       []byte
	// EtcdURL is etcd's plain-HTTP client URL on loopback.
	EtcdURL string
	// BinDir, WorkDir and LogDir are the directories actually used.
	BinDir, WorkDir, LogDir string

	ownWorkDir bool
	etcdDir    string     // on tmpfs; etcd's --data-dir is its subdirectory "data"
	procs      []*process // in start order: etcd, kube-apiserver, kube-controller-manager
	stopOnce   sync.Once
	stopErr    error
}

// Start brings up etcd, kube-apiserver and kube-controller-manager and returns once each is
// healthy (etcd /health, apiserver /readyz, controller-manager /healthz). On error everything
// already started is stopped again. The processes outlive ctx; call Stop.
//
// Ports are picked free and then handed to the processes, so another process on the machine
// can take one in between; a start that fails with "address already in use" is retried with
// new ports (up to three attempts).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := startOnce(ctx, opts)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
		klog.FromContext(ctx).Info("A port was taken before the control plane bound it; retrying with new ports", "attempt", attempt, "err", err)
	}
}

func startOnce(ctx context.Context, opts Options) (*Cluster, error) {
	logger := klog.FromContext(ctx).WithName("localcluster")
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c := &Cluster{BinDir: opts.BinDir, WorkDir: opts.WorkDir, LogDir: opts.LogDir}
	ok := false
	defer func() {
		if !ok {
			if err := c.Stop(); err != nil {
				logger.Error(err, "Cleaning up after a failed start")
			}
		}
	}()
	sweepStaleDirs(logger)
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, fmt.Errorf("choosing ports: %w", err)
	}
	etcdPort, peerPort, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	c.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	p, err := newPKI(filepath.Join(c.WorkDir, "pki"), []identity{
		{user: adminUser, groups: []string{"system:masters"}},
		{user: controllerUser},
	})
	if err != nil {
		return nil, fmt.Errorf("generating PKI: %w", err)
	}
	c.CAData = p.caPEM
	if err := c.writeConfigs(p); err != nil {
		return nil, err
	}

	start := time.Now()
	etcd, err := c.start(logger, "etcd", etcdArgs(filepath.Join(c.etcdDir, etcdDataSubdir), etcdPort, peerPort))
	if err != nil {
		return nil, err
	}
	if err := etcd.waitUntil(ctx, "etcd /health", etcdHealthy(c.EtcdURL)); err != nil {
		return nil, err
	}
	logger.V(1).Info("etcd healthy", "url", c.EtcdURL, "elapsed", time.Since(start))

	apiArgs := append(apiServerArgs(p, c.EtcdURL, apiPort), opts.APIServerArgs...)
	api, err := c.start(logger, "kube-apiserver", apiArgs)
	if err != nil {
		return nil, err
	}
	if err := api.waitUntil(ctx, "kube-apiserver /readyz", httpOK(c.APIServerURL+"/readyz", c.CAData, p.tokens[adminUser])); err != nil {
		return nil, err
	}
	logger.V(1).Info("kube-apiserver ready", "url", c.APIServerURL, "elapsed", time.Since(start))

	controllers := opts.Controllers
	if len(controllers) == 0 {
		controllers = DefaultControllers()
	}
	kcmArgs := append(controllerManagerArgs(c.Kubeconfig, filepath.Join(c.WorkDir, "kcm"), kcmPort, controllers),
		opts.ControllerManagerArgs...)
	kcm, err := c.start(logger, "kube-controller-manager", kcmArgs)
	if err != nil {
		return nil, err
	}
	kcmURL := fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort)
	if err := kcm.waitUntil(ctx, "kube-controller-manager /healthz", httpOK(kcmURL, nil, "")); err != nil {
		return nil, err
	}
	logger.Info("Control plane ready", "apiserver", c.APIServerURL, "kubeconfig", c.Kubeconfig,
		"elapsed", time.Since(start).Round(time.Millisecond))
	ok = true
	return c, nil
}

// prepareDirs fills in BinDir, WorkDir, LogDir and the etcd data directory.
func (c *Cluster) prepareDirs() error {
	if c.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return err
		}
		c.BinDir = dir
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			return fmt.Errorf("binary %s missing in %s (run hack/k8s/build.sh): %w", b, c.BinDir, err)
		}
	}
	if c.WorkDir == "" {
		dir, err := ownedTempDir(workDirPrefix)
		if err != nil {
			return err
		}
		c.WorkDir, c.ownWorkDir = dir, true
	} else if err := os.MkdirAll(c.WorkDir, 0o755); err != nil {
		return err
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(c.WorkDir, "logs")
	}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return err
	}
	// etcd's data always goes to tmpfs, even when WorkDir is on disk.
	dir, err := ownedTempDir(etcdDirPrefix)
	if err != nil {
		return err
	}
	c.etcdDir = dir
	return nil
}

func (c *Cluster) start(logger klog.Logger, name string, args []string) (*process, error) {
	p, err := startProcess(name, filepath.Join(c.BinDir, name), args, filepath.Join(c.LogDir, name+".log"))
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	logger.V(1).Info("Started", "process", name, "pid", p.pid(), "log", p.logPath)
	return p, nil
}

// Stop terminates kube-controller-manager, kube-apiserver and etcd in that order (SIGTERM to
// the process group, SIGKILL after 10 s) and removes the etcd data and, if Start created it,
// the work directory. It is idempotent and safe on a partially started cluster.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for i := len(c.procs) - 1; i >= 0; i-- {
			if err := c.procs[i].stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if c.etcdDir != "" {
			errs = append(errs, os.RemoveAll(c.etcdDir))
		}
		if c.ownWorkDir {
			errs = append(errs, os.RemoveAll(c.WorkDir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// PIDs maps each started process's name to its PID (also its process-group ID).
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		m[p.name] = p.pid()
	}
	return m
}

// Exited returns an error describing the first control-plane process that is no longer running
// (with its log tail), or nil while all are up.
func (c *Cluster) Exited() error {
	for _, p := range c.procs {
		if p.exited() {
			return p.exitError()
		}
	}
	return nil
}

// ImpersonatingConfig returns a copy of the admin RESTConfig that acts as user in groups
// (system:authenticated is added by the apiserver). Use it to check RBAC for any identity.
func (c *Cluster) ImpersonatingConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

func etcdArgs(dataDir string, port, peerPort int) []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", port)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	return []string{
		"--name=local", "--data-dir=" + dataDir, "--log-level=warn", "--unsafe-no-fsync",
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=local=" + peer,
	}
}

func apiServerArgs(p *pki, etcdURL string, port int) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"), "--token-auth-file=" + p.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-cluster-ip-range=" + ServiceCIDRs,
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true", "--profiling=false",
		"--disable-admission-plugins=ServiceAccount",
	}
}

func controllerManagerArgs(kubeconfig, certDir string, port int, controllers []string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--controllers=" + strings.Join(controllers, ","),
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port), "--cert-dir=" + certDir,
		"--profiling=false",
	}
}
