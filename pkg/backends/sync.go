package backends

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// target is one backend service a reconcile works on.
type target struct {
	key bsKey
	// desired maps the resource path of each NEG that must be a backend to the annotation
	// entry (and port) it comes from; empty for a backend service the Service no longer names.
	desired map[string]desiredNEG
	// entries are the annotation entries naming this backend service, by port.
	entries map[int32]annotation.AutonegBackend
	// ports, for messages.
	ports []int32
}

type desiredNEG struct {
	port  int32
	entry annotation.AutonegBackend
}

// outcome is the result of reconciling one backend service.
type outcome struct {
	known   bool            // present is accurate
	present map[string]bool // the Service's NEGs among its backends afterwards
	synced  bool            // left exactly as asked
	removed bool            // some of the Service's NEGs were removed
	retry   retry
}

// sync reconciles one Service: it works out the backend services to visit (those its annotation
// names that may be modified, and the tracked ones it no longer names), reconciles each in
// parallel, records what is now known, writes the status annotation and tells the NEG controller
// when NEGs were released. It returns what retry the Service needs.
func (r *Reconciler) sync(ctx context.Context, key cache.ObjectName) retry {
	r.mu.Lock()
	st := r.states[key]
	if st == nil {
		r.mu.Unlock()
		return retryNone
	}
	want := st.want
	r.mu.Unlock()

	target := want.Target
	cfg, has, err := annotation.AutonegFromService(want.Service)
	var aerr *annotation.Error
	if errors.As(err, &aerr) {
		klog.FromContext(ctx).Info("Autoneg configuration rejected; leaving backend services as they are", "message", aerr.Message)
		r.cfg.Events.Warn(key, target, slot(ReasonInvalidAutoneg, ""), ReasonInvalidAutoneg,
			aerr.Message+"; backend services are left as they are until it is fixed")
		r.finish(key, nil, false)
		return retryNone
	}
	r.cfg.Events.Clear(key, slot(ReasonInvalidAutoneg, ""))

	targets := r.targets(key, want, cfg, has)
	owned := map[string]bool{}
	for _, ref := range want.Owned {
		owned[gce.ResourcePath(gce.NEGURL(r.cfg.Project, ref.Zone, ref.Name))] = true
	}
	running := map[string]bool{}
	r.mu.Lock()
	for _, t := range targets {
		for p := range t.desired {
			owned[p], running[p] = true, true
		}
		if st.tracked[t.key] == nil {
			st.tracked[t.key] = &bsState{} // tracked before the first write (the record of lesson 21)
		}
	}
	st.running = running
	r.mu.Unlock()

	outcomes := make([]outcome, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { outcomes[i] = r.reconcileBS(ctx, want, t, owned, cfg.SyncCapacityScaler) })
	}
	wg.Wait()

	res := retryNone
	released := false
	outs := map[bsKey]outcome{}
	for i, t := range targets {
		outs[t.key] = outcomes[i]
		res = worse(res, outcomes[i].retry)
		released = released || outcomes[i].removed
	}
	ok := r.finish(key, outs, res == retryNone)
	if err := r.writeStatus(ctx, key, want, cfg, has, targets); err != nil {
		res = worse(res, retryBackoff)
	}
	// NEGs of the Service that no annotation entry wants are waiting to be deleted: tell the
	// NEG controller they are out of the backend services now.
	pending := false
	for p := range owned {
		pending = pending || !running[p]
	}
	if released || (ok && pending) {
		r.release(key)
	}
	return res
}

// targets lists the backend services to reconcile for a Service, with warnings for the
// references that are skipped.
func (r *Reconciler) targets(key cache.ObjectName, want Want, cfg annotation.Autoneg, has bool) []*target {
	byKey := map[bsKey]*target{}
	var missing []string
	if has {
		for _, port := range slices.Sorted(maps.Keys(cfg.BackendServices)) {
			pn, ok := want.NEGs[port]
			if !ok {
				missing = append(missing, strconv.Itoa(int(port)))
				continue
			}
			for _, e := range cfg.BackendServices[port] {
				k := bsKey{region: e.Region, name: e.Name}
				if !r.admit(key, want, k, port) {
					continue
				}
				t := byKey[k]
				if t == nil {
					t = &target{key: k, desired: map[string]desiredNEG{}, entries: map[int32]annotation.AutonegBackend{}}
					byKey[k] = t
				}
				t.entries[port] = e
				t.ports = append(t.ports, port)
				for _, z := range pn.Zones {
					t.desired[gce.ResourcePath(gce.NEGURL(r.cfg.Project, z, pn.Name))] = desiredNEG{port: port, entry: e}
				}
			}
		}
	}
	if len(missing) > 0 {
		r.cfg.Events.Warn(key, want.Target, slot(ReasonPortWithoutNEG, ""), ReasonPortWithoutNEG, fmt.Sprintf(
			"Port(s) %s in %s have no NEG: add them to exposed_ports in %s; their backend services are not changed",
			strings.Join(missing, ", "), annotation.AutonegKey, annotation.NEGKey))
	} else {
		r.cfg.Events.Clear(key, slot(ReasonPortWithoutNEG, ""))
	}
	r.mu.Lock()
	if st := r.states[key]; st != nil {
		for k := range st.tracked {
			if byKey[k] == nil && r.cfg.Allow.Allows(k.region, k.name) {
				byKey[k] = &target{key: k, desired: map[string]desiredNEG{}}
			}
		}
	}
	r.mu.Unlock()
	out := make([]*target, 0, len(byKey))
	for _, t := range byKey {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *target) int { return strings.Compare(a.key.String(), b.key.String()) })
	return out
}

// admit checks that the backend service k, named for port, may be used: in the cluster's region
// (or global) and on the allow-list. A refusal is a Warning event.
func (r *Reconciler) admit(key cache.ObjectName, want Want, k bsKey, port int32) bool {
	if k.region != "" && r.cfg.Region != "" && k.region != r.cfg.Region {
		r.cfg.Events.Warn(key, want.Target, slot(ReasonWrongRegion, k.String()), ReasonWrongRegion, fmt.Sprintf(
			"Backend service %s (port %d in %s) is in another region than the cluster (%s): its NEGs cannot be backends there; it is not changed",
			k.describe(), port, annotation.AutonegKey, r.cfg.Region))
		return false
	}
	r.cfg.Events.Clear(key, slot(ReasonWrongRegion, k.String()))
	if !r.cfg.Allow.Allows(k.region, k.name) {
		r.cfg.Events.Warn(key, want.Target, slot(ReasonNotAllowed, k.String()), ReasonNotAllowed, fmt.Sprintf(
			"Backend service %s (port %d in %s) is not in the controller's --backend-service-allow list; it is not changed",
			k.describe(), port, annotation.AutonegKey))
		return false
	}
	r.cfg.Events.Clear(key, slot(ReasonNotAllowed, k.String()))
	return true
}

// reconcileBS brings one backend service in step: read, plan, write only on difference, retry
// 412 with a fresh read (bounded, jittered). Nothing is written when the plan is refused.
func (r *Reconciler) reconcileBS(ctx context.Context, want Want, t *target, owned map[string]bool, syncCapacity bool) outcome {
	logger := klog.FromContext(ctx).WithValues("backendService", t.key.String())
	key, target := want.Key, want.Target
	isOurs := func(group string) bool { return owned[gce.ResourcePath(group)] }
	// Not client-go's retry package: the conflict here is GCE's (412 on a stale fingerprint,
	// classified by pkg/gce), not the Kubernetes API's, and each attempt's outcome is logged.
	for attempt := 1; ; attempt++ {
		bs, err := r.cfg.Cloud.GetBackendService(ctx, t.key.region, t.key.name)
		if gce.IsNotFound(err) {
			if len(t.desired) == 0 {
				return outcome{known: true, present: map[string]bool{}, synced: true}
			}
			r.cfg.Events.Warn(key, target, slot(ReasonNotFound, t.key.String()), ReasonNotFound, fmt.Sprintf(
				"Backend service %s named for port(s) %s in %s does not exist in project %s; create it (health check, backend service, URL map stay manual) and its backends are added",
				t.key.describe(), joinPorts(t.ports), annotation.AutonegKey, r.cfg.Project))
			return outcome{known: true, present: map[string]bool{}, retry: retryLater}
		}
		if err != nil {
			return r.failed(ctx, want, t, "read", err)
		}
		r.cfg.Events.Clear(key, slot(ReasonNotFound, t.key.String()))
		desired, err := r.settings(t, bs.Protocol, syncCapacity)
		var res Result
		if err == nil {
			res = Plan(bs.Backends, desired, isOurs)
			err = CheckCount(res)
		}
		if err != nil {
			r.cfg.Events.Warn(key, target, slot(ReasonInvalidConfig, t.key.String()), ReasonInvalidConfig,
				fmt.Sprintf("Backend service %s is not changed: %v", t.key.describe(), err))
			return outcome{known: true, present: oursIn(bs.Backends, isOurs)}
		}
		r.cfg.Events.Clear(key, slot(ReasonInvalidConfig, t.key.String()))
		if !res.Changed() {
			r.cfg.Events.Clear(key, slot(ReasonUpdateFailed, t.key.String()))
			return outcome{known: true, present: set(res.Ours), synced: true}
		}
		upd := *bs
		upd.Backends = res.Backends
		err = r.cfg.Cloud.UpdateBackendService(ctx, t.key.region, &upd)
		if err == nil {
			r.cfg.Events.Clear(key, slot(ReasonUpdateFailed, t.key.String()))
			logger.Info("Updated backend service", "added", len(res.Added), "updated", len(res.Updated), "removed", len(res.Removed), "attempt", attempt)
			r.cfg.Events.Normal(target, ReasonBackendsUpdated, fmt.Sprintf("Backend service %s: %s", t.key.describe(), summary(res)))
			return outcome{known: true, present: set(res.Ours), synced: true, removed: len(res.Removed) > 0}
		}
		class := gce.Classify(err)
		if (class == gce.Conflict || class == gce.NotFound) && attempt < r.cfg.ConflictRetries && ctx.Err() == nil {
			// Someone else wrote first (or a NEG or the service vanished): read again and re-plan.
			delay := r.cfg.ConflictDelay << (attempt - 1)
			delay = wait.Jitter(delay, 1)
			logger.V(2).Info("Backend service changed concurrently; retrying with a fresh read", "attempt", attempt, "delay", delay, "class", class.String())
			select {
			case <-ctx.Done():
			case <-r.clock.After(delay):
			}
			continue
		}
		if class == gce.Invalid {
			r.cfg.Events.Warn(key, target, slot(ReasonInvalidConfig, t.key.String()), ReasonInvalidConfig,
				fmt.Sprintf("GCE refused the backends for backend service %s: %v", t.key.describe(), err))
			return outcome{retry: retryLater}
		}
		return r.failed(ctx, want, t, "update", err)
	}
}

// failed reports a failed read or update; the backend service's content is then unknown.
func (r *Reconciler) failed(ctx context.Context, want Want, t *target, verb string, err error) outcome {
	class := gce.Classify(err)
	klog.FromContext(ctx).Error(err, "Backend service call failed", "backendService", t.key.String(), "class", class.String())
	if class != gce.Canceled {
		r.cfg.Events.Warn(want.Key, want.Target, slot(ReasonUpdateFailed, t.key.String()), ReasonUpdateFailed,
			fmt.Sprintf("Failed to %s backend service %s (will retry): %v", verb, t.key.describe(), err))
	}
	if gce.Retry(class) == gce.RetryWithBackoff {
		return outcome{retry: retryBackoff}
	}
	return outcome{retry: retryLater}
}

// settings resolves the settings of every desired NEG for a backend service of protocol.
func (r *Reconciler) settings(t *target, protocol string, syncCapacity bool) (map[string]Settings, error) {
	out := make(map[string]Settings, len(t.desired))
	cache := map[int32]Settings{}
	for p, d := range t.desired {
		s, ok := cache[d.port]
		if !ok {
			var err error
			if s, err = SettingsFor(d.entry, protocol, syncCapacity); err != nil {
				return nil, err
			}
			cache[d.port] = s
		}
		out[p] = s
	}
	return out, nil
}

// finish records the outcomes of a reconcile (ok: all succeeded). A
// backend service that is not named any more and holds none of the Service's NEGs stops being
// tracked; a Service with nothing left to track and no annotation is forgotten. It returns ok.
func (r *Reconciler) finish(key cache.ObjectName, outs map[bsKey]outcome, ok bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[key]
	if st == nil {
		return false
	}
	st.running = nil
	for k, o := range outs {
		b := st.tracked[k]
		if b == nil {
			continue
		}
		b.known, b.present, b.synced = o.known, o.present, o.synced
		if o.known && len(o.present) == 0 && !named(st.want, k) {
			delete(st.tracked, k)
		}
	}
	// The periodic verify counts from the last attempt; failures are retried by the queue.
	st.verifiedAt = r.clock.Now()
	if len(st.tracked) == 0 && !interesting(st.want.Service) {
		delete(r.states, key)
	}
	return ok
}

// release tells the NEG controller to look at the Service's NEGs again.
func (r *Reconciler) release(key cache.ObjectName) {
	if r.cfg.OnReleased != nil {
		r.cfg.OnReleased(key)
	}
}

// named reports whether the Service's current annotation names the backend service k.
func named(w Want, k bsKey) bool {
	cfg, ok, err := annotation.AutonegFromService(w.Service)
	if !ok || err != nil {
		return false
	}
	for _, list := range cfg.BackendServices {
		for _, e := range list {
			if e.Name == k.name && e.Region == k.region {
				return true
			}
		}
	}
	return false
}

func slot(reason, ref string) string { return "autoneg:" + reason + ":" + ref }

func oursIn(bes []gce.Backend, ours func(string) bool) map[string]bool {
	out := map[string]bool{}
	for _, b := range bes {
		if ours(b.Group) {
			out[gce.ResourcePath(b.Group)] = true
		}
	}
	return out
}

func set(paths []string) map[string]bool {
	out := make(map[string]bool, len(paths))
	for _, p := range paths {
		out[p] = true
	}
	return out
}

func joinPorts(ports []int32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// summary renders what a plan changed, e.g. "added 2 backend(s) (NEG "n" in zones a, b)".
func summary(res Result) string {
	var parts []string
	for _, c := range []struct {
		verb  string
		paths []string
	}{{"added", res.Added}, {"updated", res.Updated}, {"removed", res.Removed}} {
		if len(c.paths) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d backend(s) (%s)", c.verb, len(c.paths), describeNEGs(c.paths)))
		}
	}
	return strings.Join(parts, ", ")
}

// describeNEGs renders NEG paths grouped by name: NEG "n" in zones a, b.
func describeNEGs(paths []string) string {
	zones := map[string][]string{}
	var names []string
	for _, p := range paths {
		parts := strings.Split(p, "/")
		name, zone := gce.LastSegment(p), ""
		for i := 0; i+1 < len(parts); i++ {
			if parts[i] == "zones" {
				zone = parts[i+1]
			}
		}
		if _, ok := zones[name]; !ok {
			names = append(names, name)
		}
		zones[name] = append(zones[name], zone)
	}
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("NEG %q in zone(s) %s", n, strings.Join(zones[n], ", ")))
	}
	return strings.Join(out, "; ")
}
