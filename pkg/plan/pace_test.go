package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestHold(t *testing.T) {
	ep := func(i int) neg.Endpoint {
		return neg.Endpoint{Instance: "n", IP: fmt.Sprintf("10.0.0.%d", i), Port: 80}
	}
	fresh := func() Plan {
		return Plan{
			Attach: []Batch{{Op: Attach, Endpoints: []neg.Endpoint{ep(1), ep(2)}}, {Op: Attach, Endpoints: []neg.Endpoint{ep(3)}}},
			Detach: []Batch{{Op: Detach, Endpoints: []neg.Endpoint{ep(4)}}},
		}
	}
	now := time.Unix(1000, 0)
	const interval, quiet = time.Second, 100 * time.Millisecond
	// spent: a pacer with both tokens used, the last one d ago.
	spent := func(d time.Duration) Pacer { return Pacer{used: PacerBurst, at: now.Add(-d)} }
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name                 string
		short                bool
		attaching, detaching bool
		attach, detach       Pacer
		// attachSince and detachSince are how long ago the pending changes last changed.
		attachSince, detachSince time.Duration
		wantAttach               int // batches left
		wantDetach               int
		wantHeld                 int
		wantResume               time.Time
	}{
		{name: "nothing in flight, full pacers", wantAttach: 2, wantDetach: 1},
		{name: "attach in flight holds attaches only", attaching: true, wantAttach: 0, wantDetach: 1, wantHeld: 3},
		{name: "detach in flight holds detaches only", detaching: true, wantAttach: 2, wantDetach: 0, wantHeld: 1},
		{name: "both in flight", attaching: true, detaching: true, wantHeld: 4},
		{name: "one call just made: the burst allows another", attach: Pacer{used: 1, at: now}, wantAttach: 2, wantDetach: 1},
		{name: "spent pacer, changes still coming: held until quiet", attach: spent(300 * time.Millisecond),
			wantDetach: 1, wantHeld: 3, wantResume: now.Add(quiet)},
		{name: "spent pacer, changes quiet for a while: sent", attach: spent(300 * time.Millisecond),
			attachSince: quiet, wantAttach: 2, wantDetach: 1},
		{name: "spent pacer, changes quiet 40 ms: held 60 ms more", attach: spent(300 * time.Millisecond),
			attachSince: 40 * time.Millisecond, wantDetach: 1, wantHeld: 3, wantResume: now.Add(60 * time.Millisecond)},
		{name: "spent pacer with a token before quiet: resume at the token", attach: spent(950 * time.Millisecond),
			wantDetach: 1, wantHeld: 3, wantResume: now.Add(50 * time.Millisecond)},
		{name: "both spent: resume at the earlier", attach: spent(300 * time.Millisecond), detach: spent(300 * time.Millisecond),
			detachSince: 80 * time.Millisecond, wantHeld: 4, wantResume: now.Add(20 * time.Millisecond)},
		{name: "in flight and quiet: the finishing call re-syncs", attaching: true, attach: spent(100 * time.Millisecond),
			attachSince: time.Hour, wantDetach: 1, wantHeld: 3},
		{name: "short: full pacers send", short: true, wantAttach: 2, wantDetach: 1},
		{name: "short: spent attach pacer holds attaches even when quiet", short: true, attach: spent(300 * time.Millisecond),
			attachSince: time.Hour, wantDetach: 1, wantHeld: 3, wantResume: now.Add(700 * time.Millisecond)},
		{name: "short: both spent, resume at the earlier", short: true, attach: spent(300 * time.Millisecond),
			detach: spent(900 * time.Millisecond), wantHeld: 4, wantResume: now.Add(100 * time.Millisecond)},
		{name: "short: spent long ago", short: true, attach: spent(interval), detach: spent(5 * time.Second),
			wantAttach: 2, wantDetach: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fresh()
			resume := Hold(&p, Flow{InFlight: tc.attaching, Pacer: tc.attach, PendingSince: ago(tc.attachSince)},
				Flow{InFlight: tc.detaching, Pacer: tc.detach, PendingSince: ago(tc.detachSince)},
				Pacing{Interval: interval, Quiet: quiet, BudgetShort: tc.short}, now)
			if len(p.Attach) != tc.wantAttach || len(p.Detach) != tc.wantDetach || p.HeldInFlight != tc.wantHeld || !resume.Equal(tc.wantResume) {
				t.Errorf("got %d attach and %d detach batches, %d held, resume %v; want %d, %d, %d, %v",
					len(p.Attach), len(p.Detach), p.HeldInFlight, resume, tc.wantAttach, tc.wantDetach, tc.wantHeld, tc.wantResume)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	b := func(ips ...string) []Batch {
		var eps []neg.Endpoint
		for _, ip := range ips {
			eps = append(eps, neg.Endpoint{Instance: "n", IP: ip, Port: 80})
		}
		return []Batch{{Op: Attach, Endpoints: eps}}
	}
	if Signature(b("10.0.0.1", "10.0.0.2")) != Signature(append(b("10.0.0.1"), b("10.0.0.2")...)) {
		t.Error("the same endpoints in other batches give another signature")
	}
	for _, other := range [][]Batch{nil, b("10.0.0.1"), b("10.0.0.1", "10.0.0.3"), b("10.0.0.1", "10.0.0.2", "10.0.0.3")} {
		if Signature(other) == Signature(b("10.0.0.1", "10.0.0.2")) {
			t.Errorf("%v has the signature of another set", other)
		}
	}
}

func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const interval = time.Second
	var p Pacer
	steps := []struct {
		ms        int
		take      bool
		wantReady int // ms
	}{
		{ms: 0, wantReady: 0},                  // full
		{ms: 0, take: true, wantReady: 0},      // one left
		{ms: 100, take: true, wantReady: 1000}, // burst spent; tokens refill from the first call
		{ms: 600, wantReady: 1000},
		{ms: 1000, wantReady: 1000}, // a token is back
		{ms: 1000, take: true, wantReady: 2000},
		{ms: 10000, wantReady: 10000}, // refilled (never above the burst)
		{ms: 10000, take: true, wantReady: 10000},
		{ms: 10000, take: true, wantReady: 11000},
		{ms: 10000, take: true, wantReady: 11000}, // a large plan leaves no debt
	}
	for i, s := range steps {
		if s.take {
			p.Take(at(s.ms), interval)
		}
		if got := p.ReadyAt(at(s.ms), interval); got.Sub(at(s.wantReady)).Abs() > time.Microsecond {
			t.Errorf("step %d (t=%dms, take=%v): ready at %v, want %dms", i, s.ms, s.take, got.Sub(t0), s.wantReady)
		}
	}
}
