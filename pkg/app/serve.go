package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/metricsauth"
	"github.com/neg-controller/neg-controller/pkg/version"
)

// observability is what RunWithClients gets from the serving side: the metrics to record into
// and the readiness to complete once the controller exists.
type observability struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	ready    *readiness
	// certs serves the metrics server's certificate with --metrics-secure (startReadiness
	// installs the webhook's); nil otherwise.
	certs *certSource
	// The servers' addresses; nil when a server does not run (healthAddr equals addr when one
	// plain HTTP server serves both).
	addr, healthAddr, pprofAddr net.Addr
	stop                        func()
}

// restClientMetrics are client-go's request metrics. client-go takes its metric hooks once per
// process (k8s.io/client-go/tools/metrics.Register), so they are created and handed over on the
// first start, and every registry a start creates registers the same collectors.
var restClientMetrics = sync.OnceValue(func() *metrics.RESTClient {
	c := metrics.NewRESTClient()
	clientmetrics.Register(c.RegisterOpts())
	return c
})

// newRegistry returns the registry of one run with registerMetrics done.
func newRegistry() (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	return reg, registerMetrics(reg)
}

// registerMetrics registers Go and process collectors, the build info, client-go's request
// metrics and every neg_controller metric of pkg/metrics (pkg/readiness adds its own).
func registerMetrics(reg prometheus.Registerer) *metrics.Metrics {
	v := version.Get()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewBuildInfo(v.Version, v.Commit, v.GoVersion))
	reg.MustRegister(restClientMetrics().Collectors()...)
	return metrics.New(reg)
}

// startObservability creates the registry and starts the servers until stop is called:
//   - --metrics-bind-address (unless 0): /metrics, as plain HTTP with /healthz and /readyz
//     beside it, or with --metrics-secure over HTTPS, each request authenticated and authorised
//     through kube (pkg/metricsauth);
//   - --health-probe-bind-address: /healthz and /readyz over plain HTTP, always (probes carry
//     no token); by default on the metrics server when that is plain HTTP, else on :8081;
//   - with --enable-pprof, /debug/pprof/ on --pprof-bind-address, a loopback address.
//
// Listeners are opened here, so a taken port fails the start.
func startObservability(ctx context.Context, o *Options, kube kubernetes.Interface) (obs *observability, err error) {
	reg, m := newRegistry()
	obs = &observability{registry: reg, metrics: m, ready: &readiness{}}
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	obs.stop = stopAll
	defer func() {
		if err != nil {
			stopAll()
		}
	}()
	logger := klog.FromContext(ctx)
	healthAddr := o.healthProbeAddress()
	if o.MetricsBindAddress != "0" {
		mux := http.NewServeMux()
		var metricsHandler http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
		var tlsConfig *tls.Config
		msg := "Serving metrics"
		if o.MetricsSecure {
			filter, err := metricsauth.New(metricsauth.Config{Client: kube})
			if err != nil {
				return nil, fmt.Errorf("--metrics-secure: %w", err)
			}
			metricsHandler = filter.Wrap(metricsHandler)
			if obs.certs, err = newCertSource(o); err != nil {
				return nil, fmt.Errorf("--metrics-secure: %w", err)
			}
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: obs.certs.GetCertificate}
			msg = "Serving metrics over HTTPS"
		}
		mux.Handle("/metrics", metricsHandler)
		if healthAddr == "" {
			addHealth(mux, obs.ready)
			msg = "Serving metrics and health checks"
		}
		addr, stop, err := serve(ctx, o.MetricsBindAddress, mux, tlsConfig)
		if err != nil {
			return nil, fmt.Errorf("--metrics-bind-address: %w", err)
		}
		stops = append(stops, stop)
		obs.addr = addr
		if healthAddr == "" {
			obs.healthAddr = addr
		}
		logger.Info(msg, "address", addr.String(), "secure", o.MetricsSecure)
	}
	if healthAddr != "" && healthAddr != "0" {
		mux := http.NewServeMux()
		addHealth(mux, obs.ready)
		addr, stop, err := serve(ctx, healthAddr, mux, nil)
		if err != nil {
			return nil, fmt.Errorf("--health-probe-bind-address: %w", err)
		}
		stops = append(stops, stop)
		obs.healthAddr = addr
		logger.Info("Serving health checks", "address", addr.String())
	}
	if o.EnablePprof {
		addr, stop, err := serve(ctx, o.PprofBindAddress, pprofMux(), nil)
		if err != nil {
			return nil, fmt.Errorf("--pprof-bind-address: %w", err)
		}
		stops = append(stops, stop)
		obs.pprofAddr = addr
		logger.Info("Serving Go profiles", "address", addr.String())
	}
	return obs, nil
}

// serve listens on address and serves handler (over TLS when tlsConfig is set) until the
// returned stop is called.
func serve(ctx context.Context, address string, handler http.Handler, tlsConfig *tls.Config) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, nil, err
	}
	// Server errors (TLS handshakes of port scanners, say) go to klog, not the standard logger.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: klog.NewStandardLogger("WARNING")}
	if tlsConfig != nil {
		// HTTP/1.1 only, as controller-runtime's secured metrics server: a scrape needs nothing
		// more, and it keeps HTTP/2's attack surface (rapid reset) off an exposed port.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		ln = tls.NewListener(ln, tlsConfig)
	}
	logger := klog.FromContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "HTTP server failed", "address", ln.Addr().String())
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return ln.Addr(), stop, nil
}

// addHealth routes /healthz (the process serves) and /readyz (ready.check).
func addHealth(mux *http.ServeMux, ready *readiness) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready.check(r); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// pprofMux routes the Go profiling handlers under /debug/pprof/.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readiness is /readyz: GCE mutations are not stopped (the naming UID guard's fence is open),
// the informer caches have synced and, with leader election, this replica is either a leader
// renewing its Lease or a standby that can read it.
type readiness struct {
	mu     sync.Mutex
	fenced func() error
	synced func() bool
	leader func(*http.Request) error
}

// setFence installs the check that GCE mutations are not stopped (nil: none).
func (r *readiness) setFence(fenced func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fenced = fenced
}

// set installs the checks (synced is required to be ready; leader may be nil).
func (r *readiness) set(synced func() bool, leader func(*http.Request) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced, r.leader = synced, leader
}

func (r *readiness) check(req *http.Request) error {
	r.mu.Lock()
	fenced, synced, leader := r.fenced, r.synced, r.leader
	r.mu.Unlock()
	if fenced != nil {
		if err := fenced(); err != nil {
			return err
		}
	}
	if synced == nil || !synced() {
		return errors.New("informer caches not synced")
	}
	if leader != nil {
		if err := leader(req); err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
	}
	return nil
}
