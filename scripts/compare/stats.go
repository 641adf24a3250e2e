//go:build linux

package main

// This file holds the statistics of the report: medians, ranges and
// per-round ratios.

import (
	"fmt"
	"math"
	"slices"
)

// A summary is the median and range of per-round values.
type summary struct {
	median, min, max float64
	n                int
}

// summarize returns the median, minimum and maximum of xs, ignoring NaNs.
func summarize(xs []float64) summary {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return summary{median: math.NaN(), min: math.NaN(), max: math.NaN()}
	}
	slices.Sort(v)
	return summary{median: median(v), min: v[0], max: v[len(v)-1], n: len(v)}
}

// median returns the median of xs (the mean of the middle two for an even
// count), or NaN for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// ratios returns a[i]/b[i] for each round both have (NaN where b[i] is 0).
func ratios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for i := range n {
		if b[i] == 0 {
			out[i] = math.NaN()
			continue
		}
		out[i] = a[i] / b[i]
	}
	return out
}

// ratioString formats a summary of ratios: "1.23× (1.10–1.31)", or
// "1.23×" for a single round.
func (s summary) ratioString() string { return s.ratioPrec(2) }

// ratioPrec is ratioString with prec decimals.
func (s summary) ratioPrec(prec int) string {
	if s.n == 0 || math.IsNaN(s.median) {
		return "n/a"
	}
	if s.n == 1 {
		return fmt.Sprintf("%.*f×", prec, s.median)
	}
	return fmt.Sprintf("%.*f× (%.*f–%.*f)", prec, s.median, prec, s.min, prec, s.max)
}
