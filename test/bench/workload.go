package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/test/objects"
)

// Labels of bench pods. A Service selects app=<service> and serve=yes; churn flips serve.
const (
	appLabel   = objects.AppLabel
	serveLabel = "serve"
	targetPort = 8080
	svcPort    = 80
	negAnno    = `{"exposed_ports":{"80":{}}}`
)

// svcRef names one bench Service.
type svcRef struct{ ns, name string }

func (s svcRef) key() string { return s.ns + "/" + s.name }

// podSpec is one pod to create directly (no Deployment): bound to node at creation, so podsim
// only has to write its status (IP, Ready).
type podSpec struct {
	ns, name, app, node string
	serve               bool
}

func (e *env) createNamespace(ctx context.Context, ns string) error {
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// serviceObject is objects.Service selecting only the pods labelled serve=yes, annotated negAnno.
func serviceObject(s svcRef) *corev1.Service {
	svc := objects.Service(s.ns, s.name, s.name, svcPort)
	svc.Annotations = map[string]string{annotation.NEGKey: negAnno}
	svc.Spec.Selector[serveLabel] = "yes"
	return svc
}

// podObject is objects.Pod bound to p.node, labelled app and serve.
func podObject(p podSpec) *corev1.Pod {
	serve := "no"
	if p.serve {
		serve = "yes"
	}
	pod := objects.Pod(p.ns, p.name, map[string]string{appLabel: p.app, serveLabel: serve}, targetPort)
	pod.Spec.NodeName = p.node
	return pod
}

// parallel runs fn(i) for i in [0,n) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (e *env) createServices(ctx context.Context, svcs []svcRef) error {
	return parallel(ctx, len(svcs), 16, func(ctx context.Context, i int) error {
		_, err := e.kube.CoreV1().Services(svcs[i].ns).Create(ctx, serviceObject(svcs[i]), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating service %s: %w", svcs[i].key(), err)
		}
		return nil
	})
}

func (e *env) createPods(ctx context.Context, pods []podSpec) error {
	return parallel(ctx, len(pods), 24, func(ctx context.Context, i int) error {
		p := pods[i]
		_, err := e.kube.CoreV1().Pods(p.ns).Create(ctx, podObject(p), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating pod %s/%s: %w", p.ns, p.name, err)
		}
		return nil
	})
}

// podsFor lays out perSvc pods for each Service, spread round-robin over the nodes (which are
// interleaved by zone, so every Service spans the zones evenly). With half, only every other
// pod is selected (serve=yes), so churn can both add and remove endpoints from the start.
func (e *env) podsFor(svcs []svcRef, perSvc int, half bool) []podSpec {
	var out []podSpec
	k := 0
	for _, s := range svcs {
		for j := range perSvc {
			out = append(out, podSpec{ns: s.ns, name: fmt.Sprintf("%s-%d", s.name, j), app: s.name, node: e.nodes[k%len(e.nodes)], serve: !half || j%2 == 0})
			k++
		}
	}
	return out
}

// runningPods returns the Service's pods with an IP and no deletion timestamp.
func (e *env) runningPods(s svcRef) []*corev1.Pod {
	objs, _ := e.podIdx.ByIndex(serviceIndex, s.key())
	var out []*corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && p.Spec.NodeName != "" {
			out = append(out, p)
		}
	}
	return out
}

// waitPods waits until every Service has want pods with an IP (want 0: no pods at all left).
func (e *env) waitPods(ctx context.Context, svcs []svcRef, want int, timeout time.Duration) error {
	return poll(ctx, 200*time.Millisecond, timeout, func() (bool, string) {
		short := 0
		for _, s := range svcs {
			n := len(e.runningPods(s))
			if want == 0 {
				objs, _ := e.podIdx.ByIndex(serviceIndex, s.key())
				n = len(objs)
			}
			if n != want {
				short++
			}
		}
		return short == 0, fmt.Sprintf("%d of %d services without %d running pods", short, len(svcs), want)
	})
}

// waitSlices waits until every Service's EndpointSlices hold exactly want serving IPs.
func (e *env) waitSlices(ctx context.Context, svcs []svcRef, want int, timeout time.Duration) error {
	return poll(ctx, 200*time.Millisecond, timeout, func() (bool, string) {
		short := 0
		for _, s := range svcs {
			if e.slices.count(s.key()) != want {
				short++
			}
		}
		return short == 0, fmt.Sprintf("%d of %d services' EndpointSlices without exactly %d endpoints", short, len(svcs), want)
	})
}

// setServe patches a pod's serve label (the churn's unit of change).
func (e *env) setServe(ctx context.Context, ns, name string, serve bool) error {
	v := "no"
	if serve {
		v = "yes"
	}
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, serveLabel, v)
	_, err := e.kube.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// deletePods deletes every pod of the Service with the default grace period (1 s), in one call.
func (e *env) deletePods(ctx context.Context, s svcRef) error {
	return e.kube.CoreV1().Pods(s.ns).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: appLabel + "=" + s.name})
}

// poll calls cond every interval until it holds, ctx ends or timeout passes.
func poll(ctx context.Context, interval, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
