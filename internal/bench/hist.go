package bench

import (
	"math"
	"time"
)

// Hist is a latency histogram with logarithmic buckets: about 1%
// relative precision from 1 ns to about 100 s, in a fixed 2 KiB-ish array
// so that millions of samples cost no memory.
type Hist struct {
	counts [hBuckets]uint64
	n      uint64
	max    time.Duration
	sum    time.Duration
}

const (
	hPerOctave = 64 // buckets per doubling: 2^(1/64) ≈ 1.1% apart
	hBuckets   = 37 * hPerOctave
)

func bucket(d time.Duration) int {
	if d < 1 {
		return 0
	}
	i := int(math.Log2(float64(d)) * hPerOctave)
	return min(max(i, 0), hBuckets-1)
}

// Add records one sample.
func (h *Hist) Add(d time.Duration) {
	h.counts[bucket(d)]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

// AddN records n samples of the same duration.
func (h *Hist) AddN(d time.Duration, n uint64) {
	h.counts[bucket(d)] += n
	h.n += n
	h.sum += d * time.Duration(n)
	if d > h.max {
		h.max = d
	}
}

// Merge adds o's samples to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest sample.
func (h *Hist) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q <= 1), to the bucket's precision.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The bucket's geometric middle.
			d := time.Duration(math.Exp2((float64(i) + 0.5) / hPerOctave))
			return min(d, h.max)
		}
	}
	return h.max
}
