package plan

import "time"

// Pacing: which calls of a Plan go out now. Compute says what a NEG needs; Hold says when.
//
// Decision table, per NEG and direction (attach, detach), for a plan with calls of that
// direction:
//
//	call of that direction in flight   budget short   pacer token   action
//	yes                                -              -             hold; the finishing call re-syncs
//	no                                 no             -             send now
//	no                                 yes            yes           send now
//	no                                 yes            no            hold until the pacer has a token
//
// "Budget short" means calls already wait for GCE's shared mutation budget (or it was slowed
// after rate-limit errors): then sending fewer, larger calls is what gets endpoints out
// sooner, and each NEG is held to about one call per interval. Otherwise a change goes out the
// moment nothing of its direction is in flight, so the last change of a burst reaches GCE one
// operation latency after it was seen, not a pacing interval later.
//
// Held endpoints are counted in HeldInFlight; a held plan is never lost: the caller re-plans
// when the call in flight finishes, or at the returned time.
//
// The calls of one plan all go together, so N endpoints changed together cost ceil(N/batch)
// calls whichever rule applies. kubernetes/ingress-gce likewise runs at most one attach and
// one detach per NEG at a time.

// Flow is the state of one NEG and direction that Hold decides from.
type Flow struct {
	// InFlight reports whether a call of this direction is in flight on the NEG.
	InFlight bool
	// Pacer paces the direction's calls while the budget is short.
	Pacer Pacer
}

// Hold removes from p the calls that must wait (see the decision table) and returns when the
// caller should plan again for a pacer's token: zero when nothing waits on a pacer.
func Hold(p *Plan, attach, detach Flow, budgetShort bool, now time.Time, interval time.Duration) (resumeAt time.Time) {
	hold := func(batches *[]Batch, f Flow) {
		if len(*batches) == 0 {
			return
		}
		ready := now
		if budgetShort {
			ready = f.Pacer.ReadyAt(now, interval)
		}
		if !f.InFlight && !ready.After(now) {
			return
		}
		for _, b := range *batches {
			p.HeldInFlight += len(b.Endpoints)
		}
		*batches = nil
		if !f.InFlight && (resumeAt.IsZero() || ready.Before(resumeAt)) {
			resumeAt = ready
		}
	}
	hold(&p.Attach, attach)
	hold(&p.Detach, detach)
	return resumeAt
}

// PacerBurst is how many calls of one direction a NEG may get in quick succession before its
// pacer holds the next one for an interval.
const PacerBurst = 2

// Pacer is the token bucket of one NEG and direction: at most one call per interval
// sustained, with a burst of PacerBurst. The zero value is a full bucket.
type Pacer struct {
	used float64   // tokens in use at at, in [0, PacerBurst]; one comes back per interval
	at   time.Time // when used was last changed
}

// usedAt returns the tokens in use at now.
func (p Pacer) usedAt(now time.Time, interval time.Duration) float64 {
	if p.at.IsZero() || interval <= 0 {
		return 0
	}
	return max(p.used-float64(now.Sub(p.at))/float64(interval), 0)
}

// Take charges one plan's calls started at now (one token however many batches; never more
// than the burst: a large plan leaves no debt).
func (p *Pacer) Take(now time.Time, interval time.Duration) {
	p.used = min(p.usedAt(now, interval)+1, PacerBurst)
	p.at = now
}

// ReadyAt returns when the next call may start: now if a token is left.
func (p Pacer) ReadyAt(now time.Time, interval time.Duration) time.Time {
	over := p.usedAt(now, interval) - (PacerBurst - 1)
	if over <= 0 {
		return now
	}
	return now.Add(time.Duration(over * float64(interval)))
}
