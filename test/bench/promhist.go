package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// promText is one scrape of a Prometheus text exposition.
type promText string

// scrapeMetrics fetches base/metrics.
func scrapeMetrics(ctx context.Context, base string) (promText, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return promText(b), err
}

// sample returns the value of an unlabelled sample (gauge or counter), NaN if absent.
func (t promText) sample(name string) float64 {
	for _, l := range strings.Split(string(t), "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return math.NaN()
}

// histogram returns the cumulative bucket counts of histogram name (le → count), summed over
// every other label (e.g. result="success" and "error").
func (t promText) histogram(name string) map[float64]float64 {
	out := map[float64]float64{}
	prefix := name + "_bucket{"
	for _, l := range strings.Split(string(t), "\n") {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		le := math.NaN()
		for _, kv := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(kv, `le="`); ok {
				le, _ = strconv.ParseFloat(strings.TrimSuffix(v, `"`), 64) // "+Inf" parses as +Inf
			}
		}
		n, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
		if math.IsNaN(le) || err != nil {
			continue
		}
		out[le] += n
	}
	return out
}

// histDelta is after − before, bucket by bucket.
func histDelta(before, after map[float64]float64) map[float64]float64 {
	out := map[float64]float64{}
	for le, n := range after {
		out[le] = n - before[le]
	}
	return out
}

// histQuantile is Prometheus' histogram_quantile on cumulative buckets: the bucket holding
// rank q×count, linearly interpolated inside it (from 0 for the first bucket); a rank in the
// +Inf bucket gives the largest finite bound. It returns the count too; NaN when empty.
func histQuantile(q float64, buckets map[float64]float64) (float64, float64) {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 || buckets[les[len(les)-1]] <= 0 {
		return math.NaN(), 0
	}
	total := buckets[les[len(les)-1]]
	rank := q * total
	lo, below := 0.0, 0.0
	for _, le := range les {
		n := buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lo, total
			}
			if n == below {
				return le, total
			}
			return lo + (le-lo)*(rank-below)/(n-below), total
		}
		lo, below = le, n
	}
	return lo, total
}
