package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// namingUIDCheckPeriod is how often the ConfigMap is read, as GKE's controller does (5 s).
const namingUIDCheckPeriod = 5 * time.Second

// namingUIDGuard makes sure the naming UID never changes under a running controller. Every
// period it reads ConfigMap kube-system/ingress-uid:
//
//	uid key                   action
//	the UID in use            nothing
//	missing (or no ConfigMap) re-create / complete it with the UID in use, log it (once per streak)
//	any other value           close the fence: GCE mutations stop, /readyz fails, the
//	                          neg_controller_naming_uid_conflict gauge is 1, one error is logged
//
// A changed value is the dangerous case: the next start would generate other NEG names and
// empty the NEGs load balancers use. So this process keeps its UID but changes nothing in GCE
// any more, and says why; it does not exit by itself (a crash loop would hide the reason).
// The operator restores the ConfigMap's value (or sets --cluster-uid) and restarts it. The fence
// is never reopened.
//
// It polls with a GET rather than watching: one small request per period costs nothing, needs
// only the get permission the controller already has on that one ConfigMap (an informer needs
// list and watch in kube-system), and matches GKE's behaviour.
type namingUIDGuard struct {
	client  kubernetes.Interface
	uid     string
	fence   *gce.Fence
	metrics *metrics.Metrics
	clock   clock.WithTicker
	period  time.Duration

	restoring bool // the last check re-created the ConfigMap (log once per streak, e.g. in dry run)
}

// startNamingUIDGuard runs g until ctx is done or the returned stop is called; stop returns
// once g has ended.
func startNamingUIDGuard(ctx context.Context, g *namingUIDGuard) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// run checks every period until ctx is done or the fence is closed.
func (g *namingUIDGuard) run(ctx context.Context) {
	t := g.clock.NewTicker(g.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if g.check(ctx) {
			return
		}
	}
}

// check reads the ConfigMap once and acts on it (see namingUIDGuard). It returns true once
// the fence is closed: there is nothing left to guard.
func (g *namingUIDGuard) check(ctx context.Context) (fenced bool) {
	if g.fence.Err() != nil {
		return true
	}
	logger := klog.FromContext(ctx).WithValues("configMap", uidConfigMap)
	cms := g.client.CoreV1().ConfigMaps(UIDConfigMapNamespace)
	cm, err := cms.Get(ctx, UIDConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		if ctx.Err() == nil {
			logger.Error(err, "Reading the naming UID ConfigMap failed; will retry", "retryIn", g.period)
		}
		return false
	}
	var got string
	if cm != nil {
		got = cm.Data[UIDConfigMapKey]
	}
	switch got {
	case g.uid:
		g.restoring = false
		return false
	case "":
		if err := storeNamingUID(ctx, cms, cm, g.uid); err != nil {
			if !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				logger.Error(err, "Restoring the naming UID ConfigMap failed; will retry", "retryIn", g.period)
			}
			return false // a concurrent writer: the next check reads what it wrote
		}
		if !g.restoring {
			logger.Info("The naming UID ConfigMap was deleted or lost its uid: restored it with the naming UID in use", "uid", g.uid)
		}
		g.restoring = true
		return false
	}
	reason := fmt.Sprintf("the uid of ConfigMap %s changed from %q (in use) to %q while running; restore %q "+
		"(or set --cluster-uid) and restart", uidConfigMap, g.uid, got, g.uid)
	if g.fence.Close(reason) {
		g.metrics.SetNamingUIDConflict(true)
		logger.Error(errors.New(reason), "Naming UID changed: Compute Engine mutations are stopped and /readyz fails "+
			"until the ConfigMap is restored and the controller restarted", "inUse", g.uid, "found", got)
	}
	return true
}
