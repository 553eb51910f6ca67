package svcneg

import (
	"fmt"
	"slices"
	"strings"
)

// MaxProblems is how many per-zone problems a condition message lists; more are counted.
const MaxProblems = 5

// ZoneNEG is what the NEG controller knows, after one sync, of the NEG of a Service port in one
// zone.
type ZoneNEG struct {
	// Active: the zone is one of the Service's NEG zones (candidate nodes, or pre-provisioned),
	// so the NEG must exist there; an inactive NEG is one of ours kept, emptied, in a zone that
	// lost its nodes.
	Active bool
	// NEG is the NEG when it exists and serves the port (State is set by Observe); nil when it
	// does not exist or is not usable, with Problem saying why if Active.
	NEG *NegObjectReference
	// Problem is why the NEG is missing (NEG nil) or why its endpoints are not in sync (it is
	// full, or calls keep failing); "" when neither.
	Problem string
	// Settled: the NEG holds exactly its desired endpoints and has no call in flight.
	Settled bool
}

// Observe sums up the NEGs of one Service port:
//
//	no active zone                     Initialized False (noZone)      Synced False (same message)
//	an active NEG missing              Initialized False (its Problem) Synced False (same message)
//	a NEG with a Problem               Initialized True                Synced False (the Problems)
//	a NEG not Settled, no Problem      Initialized True                Synced unknown (nil: left as is)
//	every NEG Settled                  Initialized True                Synced True
//
// Messages list at most MaxProblems problems, sorted. negs is not modified.
func Observe(negs []ZoneNEG, noZone string) Observed {
	var obs Observed
	var missing, failing []string
	pending, active := false, 0
	for _, z := range negs {
		if z.Active {
			active++
		}
		if z.NEG == nil {
			if z.Active {
				missing = append(missing, z.Problem)
			}
			continue
		}
		ref := *z.NEG
		ref.State = StateActive
		if !z.Active {
			ref.State = StateInactive
		}
		obs.NEGs = append(obs.NEGs, ref)
		switch {
		case z.Problem != "":
			failing = append(failing, z.Problem)
		case !z.Settled:
			pending = true
		}
	}
	switch {
	case active == 0:
		obs.Initialized = Check{Message: noZone}
	case len(missing) > 0:
		obs.Initialized = Check{Message: joinProblems(missing)}
	default:
		obs.Initialized = Check{OK: true}
	}
	switch {
	case !obs.Initialized.OK:
		obs.Synced = &Check{Message: obs.Initialized.Message}
	case len(failing) > 0:
		obs.Synced = &Check{Message: joinProblems(failing)}
	case !pending:
		obs.Synced = &Check{OK: true}
	}
	return obs
}

// joinProblems lists problems sorted, at most MaxProblems of them, and counts the rest.
func joinProblems(ps []string) string {
	ps = slices.Sorted(slices.Values(ps))
	if len(ps) > MaxProblems {
		ps = append(ps[:MaxProblems:MaxProblems], fmt.Sprintf("and %d more", len(ps)-MaxProblems))
	}
	return strings.Join(ps, "; ")
}
