package controller

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// TestConvergesUnderFaults injects rate limiting (429 on 20% of requests) and server errors
// (503 on 5%) on every Compute method and checks that every NEG ends with exactly the desired
// endpoints through scale-up, scale-down and churn.
func TestConvergesUnderFaults(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 2 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-a2", zoneA)
	e.addNode("node-b1", zoneB)
	e.srv.InjectFault(fakegce.Fault{Method: "*", Code: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Rate: 0.2})
	e.srv.InjectFault(fakegce.Fault{Method: "*", Code: http.StatusServiceUnavailable, Reason: "backendError", Rate: 0.05})
	// The random faults may miss a short run; these always fire.
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, Code: http.StatusServiceUnavailable, Reason: "backendError", Count: 2})
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, Code: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Count: 2})
	// Some operations fail after they started (outcome seen only when waiting).
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, FailOperation: true, Rate: 0.05})
	e.srv.InjectFault(fakegce.Fault{Method: mDetach, FailOperation: true, Rate: 0.05})
	for _, svc := range []string{"one", "two"} {
		e.createService(service("default", svc, `{"exposed_ports":{"80":{},"81":{}}}`, 80, 81))
	}
	e.start(nil, 0)

	for step, n := range []int{1400, 300, 900} {
		pods := map[string][]testPod{}
		for i, svc := range []string{"one", "two"} {
			all := e.pods(n+i*50, "node-a1", "node-a2", "node-b1")
			// Churn: shift the pod set so each step both adds and removes endpoints.
			pods[svc] = all[min(step*37, len(all)):]
			e.setEndpoints("default", svc, []int32{80, 81}, pods[svc])
		}
		e.eventually(fmt.Sprintf("step %d (%d endpoints)", step, n), func() error {
			for svc, ps := range pods {
				for _, p := range []int32{80, 81} {
					if err := e.checkService(svc, p, negName(svc, p), ps, zoneA, zoneB); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	statuses := map[int]int{}
	for _, r := range e.srv.Requests() {
		statuses[r.Status]++
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("faults did not fire: %v", statuses)
	}
	t.Logf("responses by status: %v; calls: %v", statuses, e.srv.Counts())
}
