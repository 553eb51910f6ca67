package negsync

import (
	"fmt"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// duals returns endpoints from..to-1 as dual-stack endpoints: the pods of eps with an IPv6
// address too.
func duals(from, to int) neg.EndpointSet {
	s := neg.NewEndpointSet()
	for i := from; i < to; i++ {
		e := ep(i)
		e.IPv6 = fmt.Sprintf("fd00::%x", i+1)
		s.Insert(e)
	}
	return s
}

// TestMigrationStepsArePaused: a single → dual-stack switch of a 10-endpoint NEG moves one
// endpoint per step (detach the old, then attach the new), and each step after the first
// waits exactly MigrationPause after the previous step's detach finished: the NEG never holds
// fewer than 9 of its 10 pods, and the whole switch takes 9 pauses.
func TestMigrationStepsArePaused(t *testing.T) {
	const pause = 10 * time.Second
	h := newHarness(t, func(c *Config) { c.MigrationPause = pause })
	h.cloud.put(ref, eps(0, 10).Sorted()...)
	h.known()
	want := duals(0, 10)
	for step := 1; step <= 10; step++ {
		stepAt := h.clk.Now()
		out := h.apply(want)
		h.s.Wait()
		if out.Started != 1 || h.cloud.count("detach") != step {
			t.Fatalf("step %d: Apply = %+v, %d detach calls; want 1 call, %d detaches", step, out, h.cloud.count("detach"), step)
		}
		if n := h.cloud.set(ref).Len(); n != 9 {
			t.Fatalf("step %d: NEG holds %d endpoints after the detach, want 9", step, n)
		}
		out = h.apply(want)
		h.s.Wait()
		if out.Started != 1 || h.cloud.count("attach") != step {
			t.Fatalf("step %d: second Apply = %+v, %d attach calls; want the successor attached", step, out, h.cloud.count("attach"))
		}
		if step == 10 {
			break
		}
		out = h.apply(want)
		if out.Started != 0 || out.Migrating != 2*(10-step) || !out.ResumeAt.Equal(stepAt.Add(pause)) {
			t.Fatalf("step %d: third Apply = %+v, want nothing started, %d migrating, resume at %v",
				step, out, 2*(10-step), stepAt.Add(pause))
		}
		h.clk.SetTime(out.ResumeAt)
	}
	if got := h.cloud.set(ref); !got.Equal(want) {
		t.Errorf("NEG holds %v, want the dual-stack endpoints", got.Sorted())
	}
	if again := h.apply(want); again.Started != 0 || again.Migrating != 0 || !again.ResumeAt.IsZero() {
		t.Errorf("Apply after the migration = %+v, want nothing", again)
	}
	if d := h.clk.Now().Sub(t0); d != 9*pause {
		t.Errorf("migration took %v of fake time, want 9 pauses (%v)", d, 9*pause)
	}
}
