//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseRedisBenchmarkCSV(t *testing.T) {
	good := "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"82815.73\",\"4.815\"\n\"GET\",\"85726.53\",\"7.792\"\n"
	r, err := parseRedisBenchmarkCSV(good)
	if err != nil || r["SET"] != 82815.73 || r["GET"] != 85726.53 {
		t.Fatalf("parseRedisBenchmarkCSV = %v, %v", r, err)
	}
	for _, bad := range []string{
		"", "\"test\",\"rps\"\n\"SET\",\"1\"\n", "\"SET\",\"x\"\n\"GET\",\"1\"\n",
		"Error from server: ERR value does not fit\n" + good,
	} {
		if r, err := parseRedisBenchmarkCSV(bad); err == nil {
			t.Errorf("parseRedisBenchmarkCSV(%q) = %v, want an error", bad, r)
		}
	}
	rows := []respRow{{combo: respCombo{50, 16, 1}, redis: []respResult{{"GET": 100, "SET": 100}}, shmgr: []respResult{{"GET": 120, "SET": 105}}}}
	tab := respTable(rows)
	if !strings.Contains(tab, "| -c 50 -P 16 | GET | ") || !strings.Contains(tab, "1.20×") || !strings.Contains(tab, "| ≥ 1.1× | yes |") || !strings.Contains(tab, "| ≥ 1.1× | no |") {
		t.Errorf("respTable:\n%s", tab)
	}
}
