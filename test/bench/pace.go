package bench

import (
	"context"
	"time"
)

// atRate calls fn rate times per second, on a fixed schedule from now, for d or until ctx
// ends. fn runs on the caller's goroutine, so it must not block for long.
func atRate(ctx context.Context, rate float64, d time.Duration, fn func()) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d || ctx.Err() != nil {
			return
		}
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		fn()
	}
}

// every calls fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}
