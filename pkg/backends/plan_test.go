package backends

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

const proj = "p"

func url(zone, name string) string  { return gce.NEGURL(proj, zone, name) }
func path(zone, name string) string { return gce.ResourcePath(url(zone, name)) }

func rate(group string, r, capacity float64) gce.Backend {
	return gce.Backend{Group: group, BalancingMode: ModeRate, MaxRatePerEndpoint: r, CapacityScaler: capacity}
}

func conn(group string, n int64, capacity float64) gce.Backend {
	return gce.Backend{Group: group, BalancingMode: ModeConnection, MaxConnectionsPerEndpoint: n, CapacityScaler: capacity}
}

func TestPlan(t *testing.T) {
	r100 := Settings{Mode: ModeRate, MaxRatePerEndpoint: 100, Capacity: 1}
	mine := map[string]bool{path("a", "mine"): true, path("b", "mine"): true, path("c", "mine"): true, path("a", "old"): true}
	ours := func(g string) bool { return mine[gce.ResourcePath(g)] }
	other := rate(url("a", "other-cluster"), 5, 0.5)
	hand := conn("https://compute.googleapis.com/compute/v1/projects/p/zones/a/networkEndpointGroups/by-hand", 3, 0)

	tests := []struct {
		name                    string
		current                 []gce.Backend
		desired                 map[string]Settings
		want                    []gce.Backend
		added, updated, removed []string
	}{
		{name: "empty service gets every zone, in order",
			desired: map[string]Settings{path("b", "mine"): r100, path("a", "mine"): r100},
			want:    []gce.Backend{rate(url("a", "mine"), 100, 1), rate(url("b", "mine"), 100, 1)},
			added:   []string{path("a", "mine"), path("b", "mine")}},
		{name: "steady state changes nothing",
			current: []gce.Backend{other, rate(url("a", "mine"), 100, 1), hand},
			desired: map[string]Settings{path("a", "mine"): r100},
			want:    []gce.Backend{other, rate(url("a", "mine"), 100, 1), hand}},
		{name: "new zone appended after others, which stay as read",
			current: []gce.Backend{rate(url("a", "mine"), 100, 1), other, hand},
			desired: map[string]Settings{path("a", "mine"): r100, path("c", "mine"): r100},
			want:    []gce.Backend{rate(url("a", "mine"), 100, 1), other, hand, rate(url("c", "mine"), 100, 1)},
			added:   []string{path("c", "mine")}},
		{name: "ours not desired removed, others kept",
			current: []gce.Backend{rate(url("a", "old"), 100, 1), other, rate(url("a", "mine"), 100, 1), hand},
			desired: map[string]Settings{path("a", "mine"): r100},
			want:    []gce.Backend{other, rate(url("a", "mine"), 100, 1), hand},
			removed: []string{path("a", "old")}},
		{name: "nothing desired removes only ours",
			current: []gce.Backend{rate(url("a", "mine"), 100, 1), other, rate(url("b", "mine"), 100, 1), hand},
			want:    []gce.Backend{other, hand},
			removed: []string{path("a", "mine"), path("b", "mine")}},
		{name: "a NEG of someone else is never removed, even unwanted",
			current: []gce.Backend{other, hand}, want: []gce.Backend{other, hand}},
		{name: "limit change updated in place, capacity kept",
			current: []gce.Backend{rate(url("a", "mine"), 10, 0.5), other},
			desired: map[string]Settings{path("a", "mine"): r100},
			want:    []gce.Backend{rate(url("a", "mine"), 100, 0.5), other},
			updated: []string{path("a", "mine")}},
		{name: "mode change",
			current: []gce.Backend{rate(url("a", "mine"), 10, 1)},
			desired: map[string]Settings{path("a", "mine"): {Mode: ModeConnection, MaxConnectionsPerEndpoint: 7, Capacity: 1}},
			want:    []gce.Backend{conn(url("a", "mine"), 7, 1)},
			updated: []string{path("a", "mine")}},
		{name: "enforced capacity",
			current: []gce.Backend{rate(url("a", "mine"), 100, 1), rate(url("b", "mine"), 100, 0.3)},
			desired: map[string]Settings{path("a", "mine"): {Mode: ModeRate, MaxRatePerEndpoint: 100, Capacity: 0.3, EnforceCapacity: true},
				path("b", "mine"): {Mode: ModeRate, MaxRatePerEndpoint: 100, Capacity: 0.3, EnforceCapacity: true}},
			want:    []gce.Backend{rate(url("a", "mine"), 100, 0.3), rate(url("b", "mine"), 100, 0.3)},
			updated: []string{path("a", "mine")}},
		{name: "initial capacity only on add",
			current: []gce.Backend{rate(url("a", "mine"), 100, 1)},
			desired: map[string]Settings{path("a", "mine"): {Mode: ModeRate, MaxRatePerEndpoint: 100, Capacity: 0.5},
				path("b", "mine"): {Mode: ModeRate, MaxRatePerEndpoint: 100, Capacity: 0.5}},
			want:  []gce.Backend{rate(url("a", "mine"), 100, 1), rate(url("b", "mine"), 100, 0.5)},
			added: []string{path("b", "mine")}},
		{name: "partial URL of ours matched",
			current: []gce.Backend{rate(path("a", "mine"), 100, 1)},
			desired: map[string]Settings{path("a", "mine"): r100},
			want:    []gce.Backend{rate(path("a", "mine"), 100, 1)}},
		{name: "duplicate of ours dropped",
			current: []gce.Backend{rate(url("a", "mine"), 100, 1), rate(url("a", "mine"), 100, 1)},
			desired: map[string]Settings{path("a", "mine"): r100},
			want:    []gce.Backend{rate(url("a", "mine"), 100, 1)},
			removed: []string{path("a", "mine")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.current, tc.desired, ours)
			if d := cmp.Diff(tc.want, got.Backends, cmpopts.IgnoreUnexported(gce.Backend{}), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("backends (-want +got):\n%s", d)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"added", got.Added, tc.added}, {"updated", got.Updated, tc.updated}, {"removed", got.Removed, tc.removed}} {
				if d := cmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("%s (-want +got):\n%s", c.what, d)
				}
			}
			if want := len(tc.added)+len(tc.updated)+len(tc.removed) > 0; got.Changed() != want {
				t.Errorf("Changed() = %v, want %v", got.Changed(), want)
			}
			for _, p := range got.Ours {
				if !mine[p] {
					t.Errorf("Ours lists %s", p)
				}
			}
		})
	}
}

func TestCheckCount(t *testing.T) {
	var full []gce.Backend
	for i := range gce.MaxBackendsPerService {
		full = append(full, rate(url("a", "x"+string(rune('a'+i%26))+string(rune('a'+i/26))), 1, 1))
	}
	never := func(string) bool { return false }
	if err := CheckCount(Plan(full, nil, never)); err != nil {
		t.Errorf("50 backends: %v", err)
	}
	res := Plan(full, map[string]Settings{path("b", "mine"): {Mode: ModeRate, MaxRatePerEndpoint: 1, Capacity: 1}}, never)
	if err := CheckCount(res); err == nil || !strings.Contains(err.Error(), "at most 50") {
		t.Errorf("51 backends: %v", err)
	}
}

func TestSettingsFor(t *testing.T) {
	tests := []struct {
		name     string
		entry    annotation.AutonegBackend
		protocol string
		sync     bool
		want     Settings
		wantErr  string
	}{
		{name: "rate on HTTP", entry: annotation.AutonegBackend{Name: "bs", MaxRatePerEndpoint: 50}, protocol: "HTTP",
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: 50, Capacity: 1}},
		{name: "default on HTTPS is RATE", entry: annotation.AutonegBackend{Name: "bs"}, protocol: "HTTPS",
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: DefaultMaxRatePerEndpoint, Capacity: 1}},
		{name: "default on TCP is CONNECTION", entry: annotation.AutonegBackend{Name: "bs"}, protocol: "TCP",
			want: Settings{Mode: ModeConnection, MaxConnectionsPerEndpoint: DefaultMaxConnectionsPerEndpoint, Capacity: 1}},
		{name: "connections on SSL", entry: annotation.AutonegBackend{Name: "bs", MaxConnectionsPerEndpoint: 1000}, protocol: "SSL",
			want: Settings{Mode: ModeConnection, MaxConnectionsPerEndpoint: 1000, Capacity: 1}},
		{name: "rate wins over connections", entry: annotation.AutonegBackend{Name: "bs", MaxRatePerEndpoint: 5, MaxConnectionsPerEndpoint: 9}, protocol: "HTTP2",
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: 5, Capacity: 1}},
		{name: "either on UNSPECIFIED", entry: annotation.AutonegBackend{Name: "bs", MaxConnectionsPerEndpoint: 9}, protocol: "UNSPECIFIED",
			want: Settings{Mode: ModeConnection, MaxConnectionsPerEndpoint: 9, Capacity: 1}},
		{name: "initial capacity", entry: annotation.AutonegBackend{Name: "bs", InitialCapacity: ptr.To[int32](50)}, protocol: "HTTP", sync: true,
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: DefaultMaxRatePerEndpoint, Capacity: 0.5}},
		{name: "capacity scaler without sync", entry: annotation.AutonegBackend{Name: "bs", CapacityScaler: ptr.To[int32](0), InitialCapacity: ptr.To[int32](50)}, protocol: "HTTP",
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: DefaultMaxRatePerEndpoint, Capacity: 0}},
		{name: "capacity scaler with sync", entry: annotation.AutonegBackend{Name: "bs", CapacityScaler: ptr.To[int32](20)}, protocol: "HTTP", sync: true,
			want: Settings{Mode: ModeRate, MaxRatePerEndpoint: DefaultMaxRatePerEndpoint, Capacity: 0.2, EnforceCapacity: true}},
		{name: "CONNECTION on HTTP refused", entry: annotation.AutonegBackend{Name: "bs", MaxConnectionsPerEndpoint: 10}, protocol: "HTTP",
			wantErr: `balancing mode CONNECTION (max_connections_per_endpoint) is not supported by backend service "bs" of protocol HTTP; use max_rate_per_endpoint`},
		{name: "RATE on TCP refused", entry: annotation.AutonegBackend{Name: "bs", Region: "r", MaxRatePerEndpoint: 10}, protocol: "TCP",
			wantErr: `balancing mode RATE (max_rate_per_endpoint) is not supported by backend service "r/bs" of protocol TCP; use max_connections_per_endpoint`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SettingsFor(tc.entry, tc.protocol, tc.sync)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	tests := []struct {
		entries      []string
		region, name string
		want         bool
	}{
		{nil, "", "anything", false},
		{[]string{""}, "", "anything", false},
		{[]string{"web-bs"}, "", "web-bs", true},
		{[]string{"web-bs"}, "us-central1", "web-bs", true},
		{[]string{"web-bs"}, "", "web-bs-2", false},
		{[]string{"web-bs"}, "", "my-web-bs", false},
		{[]string{"team-a-.*"}, "", "team-a-web", true},
		{[]string{"team-a-.*"}, "", "team-b-web", false},
		{[]string{"a|b"}, "", "b", true},
		{[]string{"a|b"}, "", "ab", false},
		{[]string{"global/.*"}, "", "x", true},
		{[]string{"global/.*"}, "us-central1", "x", false},
		{[]string{"us-central1/internal-.*"}, "us-central1", "internal-api", true},
		{[]string{"us-central1/internal-.*"}, "", "internal-api", false},
		{[]string{"x", ".*"}, "europe-west4", "y", true},
	}
	for _, tc := range tests {
		a, err := ParseAllowList(tc.entries)
		if err != nil {
			t.Fatalf("%v: %v", tc.entries, err)
		}
		if got := a.Allows(tc.region, tc.name); got != tc.want {
			t.Errorf("%q allows %s/%s = %v, want %v", tc.entries, tc.region, tc.name, got, tc.want)
		}
	}
	if _, err := ParseAllowList([]string{"("}); err == nil {
		t.Errorf("invalid regexp accepted")
	}
	if a := MustAllowList("a", " b "); a.String() != "a,b" || a.Empty() {
		t.Errorf("String() = %q", a.String())
	}
	if !(AllowList{}).Empty() {
		t.Errorf("zero AllowList not empty")
	}
}
