package app

import (
	"context"
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
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// observability is what RunWithClients gets from the serving side: the metrics to record into
// and the readiness to complete once the controller exists.
type observability struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	ready    *readiness
	addr     net.Addr // nil when the server is disabled
	stop     func()
}

// startObservability creates the registry (Go and process collectors plus every
// neg_controller metric) and, unless --metrics-bind-address is 0, serves it with /healthz,
// /readyz and (with --enable-pprof) /debug/pprof/ until stop is called. The listener is opened
// here, so a taken port fails the start.
func startObservability(ctx context.Context, o *Options) (*observability, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs := &observability{registry: reg, metrics: metrics.New(reg), ready: &readiness{}, stop: func() {}}
	if o.MetricsBindAddress == "0" {
		return obs, nil
	}
	ln, err := net.Listen("tcp", o.MetricsBindAddress)
	if err != nil {
		return nil, fmt.Errorf("--metrics-bind-address: %w", err)
	}
	srv := &http.Server{Handler: newMux(reg, obs.ready, o.EnablePprof), ReadHeaderTimeout: 10 * time.Second}
	obs.addr = ln.Addr()
	logger := klog.FromContext(ctx)
	logger.Info("Serving metrics and health checks", "address", ln.Addr().String(), "pprof", o.EnablePprof)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Metrics server failed")
		}
	}()
	obs.stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return obs, nil
}

// newMux routes /metrics, /healthz (the process serves), /readyz (ready.check) and, if
// enabled, the pprof handlers.
func newMux(reg *prometheus.Registry, ready *readiness, enablePprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
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
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
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
