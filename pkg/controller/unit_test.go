package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/endpoints"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

func svcAt(ns, name string, created time.Time) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
}

func TestNameWinner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := svcAt("ns1", "a", t0)
	b := svcAt("ns1", "b", t0.Add(time.Minute))
	sameTime := svcAt("ns0", "z", t0)
	cases := []struct {
		name      string
		svc       *corev1.Service
		claimants []*corev1.Service
		want      *corev1.Service
	}{
		{"alone", a, []*corev1.Service{a}, nil},
		{"older wins", b, []*corev1.Service{a, b}, a},
		{"older keeps it", a, []*corev1.Service{a, b}, nil},
		{"tie broken by namespace/name", a, []*corev1.Service{a, sameTime}, sameTime},
		{"tie winner keeps it", sameTime, []*corev1.Service{a, sameTime, b}, nil},
		{"svc not listed itself", b, []*corev1.Service{a}, a},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nameWinner(c.svc, c.claimants); got != c.want {
				t.Errorf("nameWinner = %v, want %v", got, c.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 5 * time.Minute, Later: 15 * time.Second}
	cases := []struct {
		failures int
		policy   gce.RetryPolicy
		want     time.Duration
	}{
		{1, gce.RetryWithBackoff, time.Second},
		{2, gce.RetryWithBackoff, 2 * time.Second},
		{5, gce.RetryWithBackoff, 16 * time.Second},
		{9, gce.RetryWithBackoff, 256 * time.Second},
		{10, gce.RetryWithBackoff, 5 * time.Minute},
		{1000, gce.RetryWithBackoff, 5 * time.Minute},
		{1, gce.RetryLater, 15 * time.Second},
		{3, gce.RetryLater, time.Minute},
		{6, gce.RetryLater, 5 * time.Minute},
		{1, gce.NoRetry, 5 * time.Minute},
		{0, gce.RetryWithBackoff, time.Second},
	}
	for _, c := range cases {
		if got := b.Delay(c.failures, c.policy); got != c.want {
			t.Errorf("Delay(%d, %s) = %s, want %s", c.failures, c.policy, got, c.want)
		}
	}
	if d := (Backoff{}).Delay(100, gce.RetryWithBackoff); d != DefaultBackoffMax {
		t.Errorf("default cap = %s, want %s", d, DefaultBackoffMax)
	}
	for i := 0; i < 100; i++ {
		if j := jitter(10 * time.Second); j < 10*time.Second || j > 11*time.Second {
			t.Fatalf("jitter out of range: %s", j)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	cases := map[gce.Class]gce.RetryPolicy{
		gce.RateLimited:   gce.RetryLater,
		gce.QuotaExceeded: gce.RetryLater,
		gce.InUse:         gce.RetryLater,
		gce.Server:        gce.RetryWithBackoff,
		gce.NotFound:      gce.RetryWithBackoff,
		gce.AlreadyExists: gce.RetryWithBackoff,
		gce.Invalid:       gce.NoRetry,
		gce.Permanent:     gce.NoRetry,
		gce.Canceled:      gce.NoRetry,
	}
	for class, want := range cases {
		if got := retryPolicy(class); got != want {
			t.Errorf("retryPolicy(%s) = %s, want %s", class, got, want)
		}
	}
}

func TestKeyBackoff(t *testing.T) {
	k := newKeyBackoff(Backoff{Base: time.Second, Max: 4 * time.Second})
	key := keyOf("ns", "svc")
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, k.When(key).Truncate(time.Second))
	}
	if d := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}, got); d != "" {
		t.Errorf("delays (-want +got):\n%s", d)
	}
	if k.NumRequeues(key) != 4 {
		t.Errorf("NumRequeues = %d", k.NumRequeues(key))
	}
	k.Forget(key)
	if d := k.When(key); d >= 2*time.Second {
		t.Errorf("after Forget: %s", d)
	}
}

func TestNEGIndex(t *testing.T) {
	x := newNEGIndex(ownershipRule{clusterUID: "cluster", namer: naming.NewNamer("a1b2c3d4")})
	desc := func(svc, port string) string {
		return naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: svc, Port: port}.String()
	}
	n1 := gce.NEG{Zone: "z1", Name: "n1", Description: desc("web", "80")}
	n2 := gce.NEG{Zone: "z1", Name: "n2", Description: `{"cluster-uid":"other"}`}
	n3 := gce.NEG{Zone: "z2", Name: "n1", Description: desc("web", "80")}
	if lost := x.refresh([]gce.NEG{n1, n2, n3}, x.generation()); len(lost) != 0 {
		t.Errorf("lost %v", lost)
	}
	web := keyOf("ns", "web")
	if got := len(x.ownedBy(web)); got != 2 {
		t.Fatalf("ownedBy = %d, want 2", got)
	}
	if e := x.get(neg.Ref{Zone: "z1", Name: "n2"}); e == nil || e.ours {
		t.Errorf("foreign NEG: %+v", e)
	}

	// A listing that started before our create and delete must not undo them.
	gen := x.generation()
	created := gce.NEG{Zone: "z3", Name: "n1", Description: desc("web", "80")}
	x.put(created)
	x.remove(neg.Ref{Zone: "z2", Name: "n1"})
	x.refresh([]gce.NEG{n1, n2, n3}, gen)
	if x.get(neg.Ref{Zone: "z3", Name: "n1"}) == nil {
		t.Errorf("stale listing dropped a NEG we created")
	}
	if x.get(neg.Ref{Zone: "z2", Name: "n1"}) != nil {
		t.Errorf("stale listing resurrected a NEG we deleted")
	}
	// A later listing is the truth.
	if lost := x.refresh([]gce.NEG{n1}, x.generation()); len(lost) != 1 || lost[0] != web {
		t.Errorf("lost = %v, want [%v]", lost, web)
	}
	if got := len(x.ownedBy(web)); got != 1 {
		t.Errorf("after refresh ownedBy = %d, want 1", got)
	}
	if got := x.owners(); len(got) != 1 || got[0] != web {
		t.Errorf("owners = %v", got)
	}

	// Adopting a generated-name NEG without description attributes it to the Service.
	x.put(gce.NEG{Zone: "z9", Name: "k8s1-x"})
	x.putOwned(gce.NEG{Zone: "z9", Name: "k8s1-x"}, naming.Description{ClusterUID: "cluster", Namespace: "ns", ServiceName: "other", Port: "81"})
	if got := len(x.ownedBy(keyOf("ns", "other"))); got != 1 {
		t.Errorf("adopted NEG not owned: %d", got)
	}
}

func TestNEGStates(t *testing.T) {
	s := newNEGStates()
	ref := neg.Ref{Zone: "z", Name: "n"}
	e1 := neg.Endpoint{Instance: "i", IP: "10.0.0.1", Port: 80}
	e2 := neg.Endpoint{Instance: "i", IP: "10.0.0.2", Port: 80}
	e3 := neg.Endpoint{Instance: "i", IP: "10.0.0.3", Port: 80}
	now := time.Now()
	never := func(int) time.Time { return now.Add(time.Hour) }

	if s.snapshot(ref, now).current != nil {
		t.Fatal("new NEG has a known current set")
	}
	s.beginList(ref, cache.ObjectName{})
	if !s.tryStart(ref, opAttach, []neg.Endpoint{e2}) {
		t.Fatal("tryStart refused")
	}
	if s.tryStart(ref, opDetach, []neg.Endpoint{e2, e3}) {
		t.Fatal("duplicate call allowed for an endpoint in flight")
	}
	// The attach completes while the listing runs; the listing predates it.
	s.finish(ref, opAttach, []neg.Endpoint{e2}, []neg.Endpoint{e2}, nil, false, now, never)
	s.endList(ref, neg.NewEndpointSet(e1), now)
	snap := s.snapshot(ref, now)
	if !snap.current.Equal(neg.NewEndpointSet(e1, e2)) || snap.inFlight.Len() != 0 {
		t.Errorf("current %v in flight %v", snap.current.Sorted(), snap.inFlight.Sorted())
	}

	// A failed call makes the set unknown and schedules a retry.
	s.tryStart(ref, opDetach, []neg.Endpoint{e1})
	s.finish(ref, opDetach, []neg.Endpoint{e1}, nil, nil, true, now, never)
	snap = s.snapshot(ref, now)
	if snap.current != nil || !snap.retryAt.Equal(now.Add(time.Hour)) {
		t.Errorf("after failure: current %v retryAt %v", snap.current, snap.retryAt)
	}

	// A failure during a listing makes the listing untrusted.
	s.beginList(ref, cache.ObjectName{})
	s.tryStart(ref, opAttach, []neg.Endpoint{e3})
	s.finish(ref, opAttach, []neg.Endpoint{e3}, nil, nil, true, now, never)
	s.endList(ref, neg.NewEndpointSet(e1), now)
	if s.snapshot(ref, now).current != nil {
		t.Errorf("listing trusted despite a failed call during it")
	}

	// Invalid endpoints are excluded until their time passes.
	s.tryStart(ref, opAttach, []neg.Endpoint{e3})
	s.finish(ref, opAttach, []neg.Endpoint{e3}, nil, []neg.Endpoint{e3}, false, now.Add(time.Minute), never)
	if !s.snapshot(ref, now).invalid.Has(e3) {
		t.Errorf("invalid endpoint not excluded")
	}
	if s.snapshot(ref, now.Add(2*time.Minute)).invalid.Has(e3) {
		t.Errorf("invalid endpoint excluded forever")
	}
}

func TestSkipSummary(t *testing.T) {
	got := skipSummary(map[endpoints.SkipReason]int{endpoints.SkipUnknownNode: 2, endpoints.SkipNotIPv4: 5, endpoints.SkipNoNodeName: 1})
	if want := "NoNodeName=1, UnknownNode=2"; got != want {
		t.Errorf("skipSummary = %q, want %q", got, want)
	}
}

func TestWarningMemory(t *testing.T) {
	w := newWarningMemory()
	k := keyOf("ns", "svc")
	if !w.changed(k, "s", "m1") || w.changed(k, "s", "m1") {
		t.Error("same message reported twice or first not reported")
	}
	if !w.changed(k, "s", "m2") {
		t.Error("new message not reported")
	}
	w.clear(k, "s")
	if !w.changed(k, "s", "m2") {
		t.Error("message not reported after clear")
	}
}

func TestVerifyDueSpreadsOverThePeriod(t *testing.T) {
	const period = 10 * time.Minute
	c := &Controller{cfg: Config{NEGVerifyPeriod: period}}
	listed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi := period, time.Duration(0)
	for i := 0; i < 1000; i++ {
		ref := neg.Ref{Zone: "us-central1-a", Name: fmt.Sprintf("k8s1-0123abcd-ns-svc-%d-deadbeef", i)}
		d := c.verifyDue(ref, listed).Sub(listed)
		if d < period/2 || d > period {
			t.Fatalf("%s: due after %s, want within [%s, %s]", ref, d, period/2, period)
		}
		if again := c.verifyDue(ref, listed).Sub(listed); again != d {
			t.Fatalf("%s: due after %s then %s, want a fixed point per NEG", ref, d, again)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < period*4/10 {
		t.Errorf("1000 NEGs due within [%s, %s], want them spread over most of the second half", lo, hi)
	}
}

func TestCoalesceHoldsNewCallsBehindInFlightAndPacedOnes(t *testing.T) {
	ep := func(i int) neg.Endpoint {
		return neg.Endpoint{Instance: "n", IP: fmt.Sprintf("10.0.0.%d", i), Port: 80}
	}
	fresh := func() plan.Plan {
		return plan.Plan{
			Attach: []plan.Batch{{Op: plan.Attach, Endpoints: []neg.Endpoint{ep(1), ep(2)}}, {Op: plan.Attach, Endpoints: []neg.Endpoint{ep(3)}}},
			Detach: []plan.Batch{{Op: plan.Detach, Endpoints: []neg.Endpoint{ep(4)}}},
		}
	}
	now := time.Unix(1000, 0)
	const interval = time.Second
	// spent: a pacer with both tokens used, the last one d ago.
	spent := func(d time.Duration) callPacer { return callPacer{used: pacerBurst, at: now.Add(-d)} }
	for _, tc := range []struct {
		name                 string
		attaching, detaching bool
		attach, detach       callPacer
		wantAttach           int // batches left
		wantDetach           int
		wantHeld             int
		wantResume           time.Time
	}{
		{name: "nothing in flight, full pacers", wantAttach: 2, wantDetach: 1},
		{name: "attach in flight holds attaches only", attaching: true, wantAttach: 0, wantDetach: 1, wantHeld: 3},
		{name: "detach in flight holds detaches only", detaching: true, wantAttach: 2, wantDetach: 0, wantHeld: 1},
		{name: "both in flight", attaching: true, detaching: true, wantHeld: 4},
		{name: "one call just made: the burst allows another", attach: callPacer{used: 1, at: now}, wantAttach: 2, wantDetach: 1},
		{name: "spent attach pacer holds attaches", attach: spent(300 * time.Millisecond), wantDetach: 1, wantHeld: 3,
			wantResume: now.Add(700 * time.Millisecond)},
		{name: "both spent: resume at the earlier", attach: spent(300 * time.Millisecond), detach: spent(900 * time.Millisecond),
			wantHeld: 4, wantResume: now.Add(100 * time.Millisecond)},
		{name: "spent long ago", attach: spent(interval), detach: spent(5 * time.Second), wantAttach: 2, wantDetach: 1},
		{name: "in flight and spent: the finishing call re-syncs", attaching: true, attach: spent(100 * time.Millisecond),
			wantDetach: 1, wantHeld: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fresh()
			snap := snapshot{attaching: tc.attaching, detaching: tc.detaching}
			snap.pacers[opAttach], snap.pacers[opDetach] = tc.attach, tc.detach
			resume := coalesce(&p, snap, now, interval)
			if len(p.Attach) != tc.wantAttach || len(p.Detach) != tc.wantDetach || p.HeldInFlight != tc.wantHeld || !resume.Equal(tc.wantResume) {
				t.Errorf("got %d attach and %d detach batches, %d held, resume %v; want %d, %d, %d, %v",
					len(p.Attach), len(p.Detach), p.HeldInFlight, resume, tc.wantAttach, tc.wantDetach, tc.wantHeld, tc.wantResume)
			}
		})
	}
}

func TestCallPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const interval = time.Second
	var p callPacer
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
			p.take(at(s.ms), interval)
		}
		if got := p.readyAt(at(s.ms), interval); got.Sub(at(s.wantReady)).Abs() > time.Microsecond {
			t.Errorf("step %d (t=%dms, take=%v): ready at %v, want %dms", i, s.ms, s.take, got.Sub(t0), s.wantReady)
		}
	}
}

func TestSliceServiceIndex(t *testing.T) {
	slice := func(ns, svc string) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s", Labels: map[string]string{}}}
		if svc != "" {
			es.Labels[discoveryv1.LabelServiceName] = svc
		}
		return es
	}
	for _, tc := range []struct {
		obj  any
		want []string
	}{
		{slice("shop", "web"), []string{"shop/web"}},
		{slice("shop", ""), nil},
		{&corev1.Service{}, nil},
	} {
		if got, err := sliceServiceOf(tc.obj); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("sliceServiceOf(%v) = %v, %v; want %v", tc.obj, got, err, tc.want)
		}
	}
}
