package zones

import (
	"errors"
	"testing"
)

func TestPlacementCache(t *testing.T) {
	var c PlacementCache
	calls := 0
	place := func(zone string) func() (Placement, error) {
		return func() (Placement, error) {
			calls++
			return Placement{Zones: append(make([]string, 0, 4), zone), Nodes: map[string]Node{"n1": {Name: "n1", Zone: zone}}}, nil
		}
	}
	get := func(hybrid bool, zone string) Placement {
		t.Helper()
		p, err := c.Get(hybrid, place(zone))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := get(false, "a"); p.Zones[0] != "a" || calls != 1 {
		t.Fatalf("first Get = %+v after %d computations", p, calls)
	}
	if p := get(false, "b"); p.Zones[0] != "a" || calls != 1 {
		t.Errorf("second Get = %+v after %d computations, want the cached placement", p, calls)
	}
	if p := get(true, "h"); p.Zones[0] != "h" || calls != 2 {
		t.Errorf("hybrid Get = %+v after %d computations, want its own placement", p, calls)
	}
	if p := get(false, "b"); cap(p.Zones) != len(p.Zones) {
		t.Errorf("cached zones have room (cap %d, len %d): a caller's append would write into them", cap(p.Zones), len(p.Zones))
	}
	c.Invalidate()
	if p := get(false, "b"); p.Zones[0] != "b" || calls != 3 {
		t.Errorf("Get after Invalidate = %+v after %d computations, want a new placement", p, calls)
	}
	if p := get(true, "i"); p.Zones[0] != "i" || calls != 4 {
		t.Errorf("hybrid Get after Invalidate = %+v after %d computations, want a new placement", p, calls)
	}
}

// TestPlacementCacheInvalidatedWhileComputing: a placement computed across an Invalidate may
// predate the change, so it is returned but not kept.
func TestPlacementCacheInvalidatedWhileComputing(t *testing.T) {
	var c PlacementCache
	p, _ := c.Get(false, func() (Placement, error) {
		c.Invalidate()
		return Placement{Zones: []string{"old"}}, nil
	})
	if p.Zones[0] != "old" {
		t.Fatalf("Get = %+v", p)
	}
	p, _ = c.Get(false, func() (Placement, error) { return Placement{Zones: []string{"new"}}, nil })
	if p.Zones[0] != "new" {
		t.Errorf("Get = %+v, want a new computation: the first one overlapped an Invalidate", p)
	}
	if _, err := c.Get(true, func() (Placement, error) { return Placement{}, errors.New("boom") }); err == nil {
		t.Error("Get returned no error from a failed computation")
	}
	p, _ = c.Get(true, func() (Placement, error) { return Placement{Zones: []string{"h"}}, nil })
	if p.Zones[0] != "h" {
		t.Errorf("Get after a failed computation = %+v, want a new one", p)
	}
}
