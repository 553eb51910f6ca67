package controller

import "time"

// pacerBurst is how many calls of one kind a NEG may get in quick succession before pacing
// holds the next one for an interval.
const pacerBurst = 2

// callPacer is the token bucket of one NEG and direction: calls at most one per interval
// sustained, with a burst of pacerBurst, so a change to a NEG that has been quiet goes out at
// once while a steady stream of changes shares calls. The zero value is a full bucket.
type callPacer struct {
	used float64   // tokens in use at at, in [0, pacerBurst]; one comes back per interval
	at   time.Time // when used was last changed
}

// usedAt returns the tokens in use at now.
func (p callPacer) usedAt(now time.Time, interval time.Duration) float64 {
	if p.at.IsZero() || interval <= 0 {
		return 0
	}
	return max(p.used-float64(now.Sub(p.at))/float64(interval), 0)
}

// take charges one call started at now (never more than the burst: a large plan leaves no debt).
func (p *callPacer) take(now time.Time, interval time.Duration) {
	p.used = min(p.usedAt(now, interval)+1, pacerBurst)
	p.at = now
}

// readyAt returns when the next call may start: now if a token is left.
func (p callPacer) readyAt(now time.Time, interval time.Duration) time.Time {
	over := p.usedAt(now, interval) - (pacerBurst - 1)
	if over <= 0 {
		return now
	}
	return now.Add(time.Duration(over * float64(interval)))
}
