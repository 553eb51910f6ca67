package bench

import (
	"testing"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestQuotaFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  int // every group; 0 = the documented default (no limit named)
	}{
		{"default limits", baseFlags, 0},
		{"raised limits", append(append([]string(nil), baseFlags...), raisedFlags...), raisedQuotaPerMinute},
		{"steady resync 10s", []string{"--resync-period=10s", "--gc-period=30s"}, 90000},
		{"rollout resync 30s", []string{"--leader-elect=false", "--resync-period=30s"}, 30000},
		{"default resync", []string{"--resync-period=10m"}, 0},
		{"bad resync", []string{"--resync-period=soon"}, 0},
	} {
		q := quotaFor(tc.flags)
		if q == nil {
			t.Fatalf("%s: quota off", tc.name)
		}
		if tc.want == 0 {
			if len(q.Limits) != 0 {
				t.Errorf("%s: limits %v, want the defaults", tc.name, q.Limits)
			}
			continue
		}
		for _, g := range fakegce.QuotaGroupNames() {
			if q.Limits[g] != tc.want {
				t.Errorf("%s: %s=%d, want %d", tc.name, g, q.Limits[g], tc.want)
			}
		}
	}
}
