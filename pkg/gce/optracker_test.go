package gce

import (
	"testing"
	"time"
)

func TestOpTrackerOldest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := opTracker{started: map[uint64]time.Time{}}
	if _, ok := tr.oldest(); ok {
		t.Fatal("oldest of an empty tracker")
	}
	remove := map[string]func(){
		"a": tr.add(t0.Add(2 * time.Second)),
		"b": tr.add(t0), // registered later, started earlier
		"c": tr.add(t0.Add(time.Second)),
		"d": tr.add(t0.Add(time.Second)), // same start as c
	}
	steps := []struct {
		remove string
		want   time.Time // zero: none left
	}{
		{remove: "c", want: t0},
		{remove: "b", want: t0.Add(time.Second)},
		{remove: "d", want: t0.Add(2 * time.Second)},
		{remove: "a"},
	}
	if got, ok := tr.oldest(); !ok || !got.Equal(t0) {
		t.Fatalf("oldest = %v, %v; want %v", got, ok, t0)
	}
	for _, s := range steps {
		remove[s.remove]()
		got, ok := tr.oldest()
		if ok != !s.want.IsZero() || !got.Equal(s.want) {
			t.Errorf("after removing %s: oldest = %v, %v; want %v", s.remove, got, ok, s.want)
		}
	}
}
