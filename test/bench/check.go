package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// checkResult compares the NEGs in fakegce with the pods the Services select.
type checkResult struct {
	NEGs        int `json:"negs"`
	NEGsExact   int `json:"negsExact"`
	NEGsMissing int `json:"negsMissing"` // wanted NEGs that do not exist
	Missing     int `json:"missingEndpoints"`
	Extra       int `json:"extraEndpoints"`
	Wanted      int `json:"wantedEndpoints"`
}

func (c checkResult) exact() bool { return c.NEGs == c.NEGsExact }

func (c checkResult) String() string {
	return fmt.Sprintf("%d/%d NEGs exact (%d absent), endpoints wanted %d, missing %d, extra %d",
		c.NEGsExact, c.NEGs, c.NEGsMissing, c.Wanted, c.Missing, c.Extra)
}

// negName is the generated NEG name of a bench Service's port.
func (e *env) negName(s svcRef) string { return e.namer.NEGName(s.ns, s.name, svcPort) }

// want returns, per zone, the endpoints the Service's NEGs must hold: every non-terminating
// pod with an IP that the Service selects, on targetPort, on its node's instance.
func (e *env) want(s svcRef) map[string]neg.EndpointSet {
	out := map[string]neg.EndpointSet{}
	for _, z := range e.zones {
		out[z] = neg.EndpointSet{}
	}
	for _, p := range e.runningPods(s) {
		if p.Labels[serveLabel] != "yes" {
			continue
		}
		z := e.nodeZone[p.Spec.NodeName]
		if out[z] == nil {
			continue
		}
		out[z].Insert(neg.Endpoint{Instance: p.Spec.NodeName, IP: p.Status.PodIP, Port: targetPort})
	}
	return out
}

// check compares every zone's NEG of every Service with want.
func (e *env) check(svcs []svcRef) checkResult {
	var r checkResult
	for _, s := range svcs {
		name := e.negName(s)
		for z, want := range e.want(s) {
			r.NEGs++
			r.Wanted += want.Len()
			got, ok := e.st.GCE.NEGEndpoints(z, name)
			if !ok {
				r.NEGsMissing++
				r.Missing += want.Len()
				continue
			}
			have := neg.NewEndpointSet(got...)
			miss, extra := 0, 0
			for ep := range want {
				if !have.Has(ep) {
					miss++
				}
			}
			for ep := range have {
				if !want.Has(ep) {
					extra++
				}
			}
			r.Missing += miss
			r.Extra += extra
			if miss == 0 && extra == 0 {
				r.NEGsExact++
			}
		}
	}
	return r
}

// convergence is how long the NEGs took to become exact, with milestones.
type convergence struct {
	Converged bool          `json:"converged"`
	Elapsed   time.Duration `json:"-"`
	Seconds   float64       `json:"seconds"`
	// Milestones: seconds until 50% and 90% of the NEGs were exact.
	Half   float64     `json:"negs50pctSeconds,omitempty"`
	Ninety float64     `json:"negs90pctSeconds,omitempty"`
	Final  checkResult `json:"final"`
}

// waitConverged polls check every interval from start until every NEG is exact, the controller
// exits, or timeout passes (then Converged is false and Final tells how far it got). With gate
// non-nil, exactness only counts once gate holds (e.g. all pods of a scale-up exist).
func (e *env) waitConverged(ctx context.Context, svcs []svcRef, start time.Time, interval, timeout time.Duration, gate func() bool) (convergence, error) {
	var c convergence
	deadline := start.Add(timeout)
	for {
		open := gate == nil || gate()
		r := e.check(svcs)
		now := time.Now()
		el := now.Sub(start).Seconds()
		if open && c.Half == 0 && r.NEGsExact*2 >= r.NEGs {
			c.Half = round(el, 2)
		}
		if open && c.Ninety == 0 && r.NEGsExact*10 >= r.NEGs*9 {
			c.Ninety = round(el, 2)
		}
		c.Final = r
		if open && r.exact() {
			c.Converged, c.Elapsed, c.Seconds = true, now.Sub(start), round(el, 2)
			return c, nil
		}
		if err := e.controllerAlive(); err != nil {
			return c, err
		}
		if now.After(deadline) {
			c.Elapsed, c.Seconds = now.Sub(start), round(el, 2)
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(interval):
		}
	}
}
