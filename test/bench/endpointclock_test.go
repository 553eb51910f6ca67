package bench

import (
	"fmt"
	"testing"
	"time"
)

// fakeNEGs is the NEGs' IP set an endpointClock test reads, and a clock it moves by hand.
type fakeNEGs struct {
	ips map[string]bool
	t   time.Time
}

func (f *fakeNEGs) read() map[string]bool { return f.ips }
func (f *fakeNEGs) now() time.Time        { return f.t }
func (f *fakeNEGs) at(sec float64) time.Time {
	return time.Unix(0, 0).Add(time.Duration(sec * float64(time.Second)))
}

func set(ips ...string) map[string]bool {
	m := map[string]bool{}
	for _, ip := range ips {
		m[ip] = true
	}
	return m
}

func TestEndpointClockScaleUp(t *testing.T) {
	g := &fakeNEGs{ips: set()}
	c := newClock("ns/big", true, set(), g.read, g.now)
	c.sliceChanged("ns/other", set("x"), g.at(0.5)) // another Service: ignored
	c.sliceChanged("ns/big", set("a"), g.at(1))
	c.sliceChanged("ns/big", set("a", "b"), g.at(2))
	c.sliceChanged("ns/big", set("a", "b"), g.at(2.5)) // e.g. b turned ready: no endpoint moved
	g.ips, g.t = set("a"), g.at(3)
	c.poll()
	if c.exact() {
		t.Fatal("exact while b is not attached")
	}
	g.ips, g.t = set("a", "b"), g.at(4)
	c.poll()
	g.t = g.at(5)
	c.poll() // still exact: exactSince stays at 4
	s := c.summary(g.at(6))
	// a: 1 → 3 (2 s); b: 2 → 4 (2 s); last change 2, exact from 4.
	if s.PerEndpoint.N != 2 || s.PerEndpoint.P50 != 2 || s.PerEndpoint.Max != 2 || s.PerEndpoint.Censored != 0 {
		t.Errorf("per endpoint = %+v", s.PerEndpoint)
	}
	if s.LastToExact != 2 || !s.LastChange.Equal(g.at(2)) || s.Polls != 3 || s.NoSlice != 0 || s.Negative != 0 {
		t.Errorf("summary = %+v", s)
	}
	if s.Changes != 2 || s.QuietChanges != 2 {
		t.Errorf("changes / quiet changes = %d / %d, want 2 / 2", s.Changes, s.QuietChanges)
	}
}

// TestEndpointClockQuietChanges: a change counts as quiet when no other follows within
// quietGap; the last one always does.
func TestEndpointClockQuietChanges(t *testing.T) {
	g := &fakeNEGs{ips: set()}
	c := newClock("ns/big", true, set(), g.read, g.now)
	var ips []string
	for _, at := range []float64{1, 1.05, 1.1, 1.3, 1.35, 2, 2.099} {
		ips = append(ips, fmt.Sprint(at))
		c.sliceChanged("ns/big", set(ips...), g.at(at))
	}
	// Quiet: 1.1 (next at 1.3), 1.35 (next at 2), 2.099 (last); 2 → 2.099 is under 100 ms.
	if s := c.summary(g.at(3)); s.Changes != 7 || s.QuietChanges != 3 {
		t.Errorf("changes / quiet changes = %d / %d, want 7 / 3", s.Changes, s.QuietChanges)
	}
}

func TestEndpointClockScaleDown(t *testing.T) {
	g := &fakeNEGs{ips: set("a", "b")}
	c := newClock("ns/big", false, set("a", "b"), g.read, g.now)
	c.sliceChanged("ns/big", set("b"), g.at(1)) // a terminating
	g.ips, g.t = set("b"), g.at(1.25)
	c.poll()
	if !c.exact() {
		t.Fatal("not exact after a was detached")
	}
	c.sliceChanged("ns/big", set(), g.at(2)) // a new change: no longer exact
	if c.exact() {
		t.Fatal("still exact after the slices changed")
	}
	g.ips, g.t = set(), g.at(2.5)
	c.poll()
	s := c.summary(g.at(3))
	if s.PerEndpoint.N != 2 || s.PerEndpoint.P50 != 0.25 || s.PerEndpoint.Max != 0.5 {
		t.Errorf("per endpoint = %+v", s.PerEndpoint)
	}
	if s.LastToExact != 0.5 {
		t.Errorf("last change → exact = %v, want 0.5", s.LastToExact)
	}
}

func TestEndpointClockCensoredAndSkew(t *testing.T) {
	g := &fakeNEGs{ips: set()}
	c := newClock("ns/big", true, set(), g.read, g.now)
	// The controller's informer was ahead of the bench's: c is attached before the bench
	// sees its slice, and the NEGs are exact for a set the bench sees after the poll's read.
	g.ips, g.t = set("c"), g.at(1)
	c.poll()
	c.sliceChanged("ns/big", set("c"), g.at(1.5))
	c.sliceChanged("ns/big", set("c", "d"), g.at(2))
	g.ips, g.t = set("c", "d", "e"), g.at(3) // e never listed: not exact, not sampled
	c.poll()
	if c.exact() {
		t.Fatal("exact with an extra endpoint")
	}
	c.sliceChanged("ns/big", set("c", "d", "e", "f"), g.at(4))
	s := c.summary(g.at(5))
	// c: negative (counted 0); d: 1 s; e: 3 - 4 → negative; f: censored at 5 - 4 = 1 s.
	if s.PerEndpoint.N != 4 || s.PerEndpoint.Censored != 1 || s.Negative != 2 || s.NoSlice != 0 {
		t.Errorf("summary = %+v", s)
	}
	if s.LastToExact != -1 {
		t.Errorf("last change → exact = %v, want -1 (never exact)", s.LastToExact)
	}

	g2 := &fakeNEGs{ips: set()}
	c2 := newClock("ns/big", true, set(), g2.read, g2.now)
	// Skew on exactness: the poll read the NEGs at 1, the bench's slice event for that set came
	// at 1.5 before the poll compared; exact counts from the change, not before it.
	g2.ips, g2.t = set("a"), g2.at(1)
	c2.sliceChanged("ns/big", set("a"), g2.at(1.5))
	c2.poll()
	if s := c2.summary(g2.at(2)); s.LastToExact != 0 {
		t.Errorf("skewed last change → exact = %v, want 0", s.LastToExact)
	}
}
