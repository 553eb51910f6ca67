package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// observeSvcNEG gathers what the sync knows about the NEGs of one wanted port.
func (c *Controller) observeSvcNEG(s *serviceSync, tasks []*negTask, desired map[int32]map[string]neg.EndpointSet,
	p portNEG, now time.Time) svcneg.Observed {
	var obs svcneg.Observed
	var missing, failing []string
	pending, active := false, 0
	want := c.description(s.key, p.port)
	for _, t := range tasks {
		if t.remove || t.port.port != p.port || t.ref.Name != p.name {
			continue
		}
		if t.active {
			active++
		}
		e := c.index.get(t.ref)
		if e == nil || !e.ours || e.desc != want {
			if t.active {
				missing = append(missing, c.missingNEGMessage(t, e))
			}
			continue
		}
		state := svcneg.StateActive
		if !t.active {
			state = svcneg.StateInactive
		}
		obs.NEGs = append(obs.NEGs, svcneg.NegObjectReference{ID: e.neg.ID, SelfLink: e.neg.SelfLink,
			NetworkEndpointType: e.neg.Type, State: state})

		var eps neg.EndpointSet
		if t.active {
			eps = desired[p.port][t.ref.Zone]
		}
		pr := c.states.progress(t.ref, eps, now, c.cfg.MaxEndpointsPerNEG)
		switch {
		case pr.overCapacity:
			failing = append(failing, fmt.Sprintf("NEG %q in zone %q is full (%d endpoints): %d endpoint(s) are not attached",
				t.ref.Name, t.ref.Zone, c.cfg.MaxEndpointsPerNEG, pr.excess))
		case pr.failures > 0 && !pr.settled():
			failing = append(failing, c.failingNEGMessage(t.ref, pr.failures))
		case !pr.settled():
			pending = true
		}
	}
	switch {
	case active == 0:
		obs.Initialized = svcneg.Check{Message: "No zone has a node that can receive load-balanced traffic (Ready and not excluded " +
			"from load balancers); NEGs are created in the zones of such nodes."}
	case len(missing) > 0:
		obs.Initialized = svcneg.Check{Message: joinProblems(missing)}
	default:
		obs.Initialized = svcneg.Check{OK: true}
	}
	switch {
	case !obs.Initialized.OK:
		obs.Synced = &svcneg.Check{Message: obs.Initialized.Message}
	case len(failing) > 0:
		obs.Synced = &svcneg.Check{Message: joinProblems(failing)}
	case !pending:
		obs.Synced = &svcneg.Check{OK: true}
	}
	return obs
}

// missingNEGMessage says why the NEG of an active task does not exist (or is not usable).
func (c *Controller) missingNEGMessage(t *negTask, e *indexEntry) string {
	if e != nil {
		return fmt.Sprintf("NEG %q in zone %q exists but was not created for this Service port (see the %s event); it is not used",
			t.ref.Name, t.ref.Zone, ReasonNEGNotOwned)
	}
	w := c.svcNEGs
	w.mu.Lock()
	f, ok := w.failures[t.ref]
	w.mu.Unlock()
	if ok {
		return f.message
	}
	return fmt.Sprintf("NEG %q in zone %q does not exist yet", t.ref.Name, t.ref.Zone)
}

// failingNEGMessage says why an existing NEG is not in sync after failed calls.
func (c *Controller) failingNEGMessage(ref neg.Ref, failures int) string {
	w := c.svcNEGs
	w.mu.Lock()
	f, ok := w.failures[ref]
	w.mu.Unlock()
	if ok {
		return f.message
	}
	return fmt.Sprintf("NEG %q in zone %q: %d call(s) in a row failed, retrying with backoff "+
		"(the Service's %s and %s events give the errors)", ref.Name, ref.Zone, failures, ReasonAttachFailed, ReasonDetachFailed)
}

func joinProblems(ps []string) string {
	slices.Sort(ps)
	if len(ps) > maxProblems {
		ps = append(ps[:maxProblems:maxProblems], fmt.Sprintf("and %d more", len(ps)-maxProblems))
	}
	return strings.Join(ps, "; ")
}

// forgetNEGFailures drops the failure messages the sync made stale: those of NEGs that are
// ready (or gone), and every one of a Service without tasks.
func (c *Controller) forgetNEGFailures(key cache.ObjectName, tasks []*negTask) {
	w := c.svcNEGs
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failures) == 0 {
		return
	}
	if tasks == nil {
		for ref, f := range w.failures {
			if f.key == key {
				delete(w.failures, ref)
			}
		}
		return
	}
	for _, t := range tasks {
		if (t.ready && !t.remove) || c.index.get(t.ref) == nil && !t.active {
			delete(w.failures, t.ref)
		}
	}
}

// negsRemain reports whether a NEG called name is still being removed for the Service: it
// exists and was not kept because a backend service uses it.
func (c *Controller) negsRemain(tasks []*negTask, name string) bool {
	w := c.svcNEGs
	for _, t := range tasks {
		if t.ref.Name != name || c.index.get(t.ref) == nil {
			continue
		}
		w.mu.Lock()
		f := w.failures[t.ref]
		w.mu.Unlock()
		if f.reason != ReasonNEGInUse {
			return true
		}
	}
	return false
}

// progress is how far one NEG is from its desired endpoints.
type progress struct {
	known        bool // the current endpoints are known
	inFlight     int
	failures     int
	inSync       bool // current is exactly the desired set (capped at the NEG's capacity)
	overCapacity bool
	excess       int
}

// settled reports whether the NEG holds its desired endpoints with nothing in flight.
func (p progress) settled() bool { return p.known && p.inFlight == 0 && p.inSync }

// progress compares the known endpoints of ref with desired (nil: none), leaving out the
// endpoints excluded as invalid at now.
func (s *negStates) progress(ref neg.Ref, desired neg.EndpointSet, now time.Time, capacity int) progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[ref]
	if st == nil {
		return progress{}
	}
	p := progress{known: st.current != nil, inFlight: len(st.inFlight), failures: st.failures}
	want := 0
	for e := range desired {
		if until, bad := st.invalid[e]; !bad || !now.Before(until) {
			want++
		}
	}
	if want > capacity {
		p.overCapacity, p.excess, want = true, want-capacity, capacity
	}
	if !p.known || len(st.current) != want {
		return p
	}
	for e := range st.current {
		if !desired.Has(e) {
			return p
		}
	}
	p.inSync = true
	return p
}
