package rollout

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxInFlight bounds the requests a load has in flight: a tick that finds that many still
// unanswered counts a failure rather than block.
const maxInFlight = 200

// podHeader is the response header in which a podsim pod names itself.
const podHeader = "X-Podsim-Pod"

// load sends rate requests per second to a URL until stopped and counts the answers that are
// not 200 (errors included) as failed.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value // string: the first failure

	mu        sync.Mutex
	latencies []time.Duration      // of successful requests
	firstSeen map[string]time.Time // pod name (podHeader) → first request it served
}

// record notes a successful request served by pod that took d and was answered at at.
func (l *load) record(pod string, d time.Duration, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latencies = append(l.latencies, d)
	if l.firstSeen == nil {
		l.firstSeen = map[string]time.Time{}
	}
	if _, ok := l.firstSeen[pod]; !ok && pod != "" {
		l.firstSeen[pod] = at
	}
}

// fail counts a failed request; the first failure's text is kept.
func (l *load) fail(err error) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, err.Error())
}

// firstError is the first failure's text, "" when none.
func (l *load) firstError() string {
	s, _ := l.firstErr.Load().(string)
	return s
}

// snapshot copies the latencies and the first request per pod.
func (l *load) snapshot() ([]time.Duration, map[string]time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.latencies), maps.Clone(l.firstSeen)
}

// run sends the requests until stop is closed, then waits for those in flight.
func (l *load) run(url string, rate int, stop <-chan struct{}) {
	tr := &http.Transport{MaxIdleConnsPerHost: maxInFlight}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.fail(fmt.Errorf("%d requests in flight", maxInFlight))
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					now := time.Now()
					l.record(resp.Header.Get(podHeader), now.Sub(t0), now)
					l.ok.Add(1)
					return
				}
				err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Fakegce-Cause"))
			}
			l.fail(err)
		})
	}
}

// percentile returns the p-th percentile (0..100) of ds by nearest rank: the value at index
// ⌊n·p/100⌋ (at most n-1) of the sorted values; 0 for no values. ds is not modified.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, min(len(s)-1, int(float64(len(s))*p/100)))]
}

// readyToFirst is the median, over pods that served at least one request, of the time from the
// pod's Ready condition turning True (second resolution) to the first request the load balancer
// sent it (firstSeen, by pod name), and the number of such pods. With an even count the upper
// of the two middle values is taken. Negative: the load balancer served the pod before it
// counted as Ready, as the readiness gate intends.
func readyToFirst(pods []corev1.Pod, firstSeen map[string]time.Time) (median time.Duration, n int) {
	var ds []time.Duration
	for _, p := range pods {
		first, ok := firstSeen[p.Name]
		if !ok {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ds = append(ds, first.Sub(c.LastTransitionTime.Time))
			}
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], len(ds)
}
