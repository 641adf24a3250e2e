//go:build linux

package main

// This file formats numbers and Markdown tables for the report.

import (
	"fmt"
	"math"
	"strings"
)

// fmtRate formats a rate with an SI prefix: "950", "17.1 k", "1.01 M".
func fmtRate(x float64) string {
	switch {
	case math.IsNaN(x):
		return "n/a"
	case x >= 1e6:
		return fmt.Sprintf("%.3g M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.3g k", x/1e3)
	}
	return fmt.Sprintf("%.3g", x)
}

// fmtSize formats a byte count in binary units: "64 B", "4 KiB", "16 MiB".
func fmtSize(n int) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d %s", n, units[i])
}

// fmtMiB formats bytes as MiB with one decimal.
func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// mdTable renders a Markdown table; cells must not hold '|'.
func mdTable(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		cells := make([]string, len(header))
		copy(cells, r)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// plural formats a count of things: "1 round", "5 rounds".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
