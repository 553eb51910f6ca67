package negsync

import (
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Progress is how far one NEG is from its desired endpoints.
type Progress struct {
	// Known reports whether the NEG's current endpoints are known.
	Known bool
	// InFlight counts endpoints with a call in flight; Failures the NEG's consecutive failures.
	InFlight int
	Failures int
	// InSync reports whether the current endpoints are exactly the desired ones (capped at the
	// NEG's capacity).
	InSync bool
	// Excess counts desired endpoints beyond the NEG's capacity (0 when they fit).
	Excess int
}

// Settled reports whether the NEG holds its desired endpoints with nothing in flight.
func (p Progress) Settled() bool { return p.Known && p.InFlight == 0 && p.InSync }

// Progress compares the known endpoints of ref with desired (nil: none), leaving out the
// endpoints excluded as invalid.
func (s *Syncer) Progress(ref neg.Ref, desired neg.EndpointSet) Progress {
	st := s.lookup(ref)
	if st == nil {
		return Progress{}
	}
	now := s.cfg.Clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	p := Progress{Known: st.current != nil, InFlight: len(st.inFlight), Failures: st.failures}
	want := 0
	for e := range desired {
		if until, bad := st.invalid[e]; !bad || !now.Before(until) {
			want++
		}
	}
	if want > s.cfg.Capacity {
		p.Excess, want = want-s.cfg.Capacity, s.cfg.Capacity
	}
	if !p.Known || len(st.current) != want {
		return p
	}
	for e := range st.current {
		if !desired.Has(e) {
			return p
		}
	}
	p.InSync = true
	return p
}
