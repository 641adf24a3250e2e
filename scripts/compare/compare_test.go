//go:build linux

package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, math.NaN()},
		{"one", []float64{3}, 3},
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"repeats", []float64{2, 2, 9, 2}, 2},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := median(in)
			if !sameFloat(got, tt.want) {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("median modified its input: %v, want %v", in, tt.in)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want summary
	}{
		{"empty", nil, summary{median: nan, min: nan, max: nan}},
		{"only NaN", []float64{nan}, summary{median: nan, min: nan, max: nan}},
		{"one", []float64{1.2}, summary{1.2, 1.2, 1.2, 1}},
		{"five", []float64{1.3, 0.9, 1.1, 1.0, 1.2}, summary{1.1, 0.9, 1.3, 5}},
		{"NaN skipped", []float64{1, nan, 3}, summary{2, 1, 3, 2}},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			got := summarize(tt.in)
			if !sameFloat(got.median, tt.want.median) || !sameFloat(got.min, tt.want.min) ||
				!sameFloat(got.max, tt.want.max) || got.n != tt.want.n {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRatios(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		want []float64
	}{
		{"empty", nil, nil, []float64{}},
		{"pairs", []float64{2, 3, 8}, []float64{1, 2, 4}, []float64{2, 1.5, 2}},
		{"shorter b", []float64{2, 3}, []float64{1}, []float64{2}},
		{"zero denominator", []float64{2, 3}, []float64{0, 3}, []float64{math.NaN(), 1}},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			got := ratios(tt.a, tt.b)
			if !slices.EqualFunc(got, tt.want, sameFloat) {
				t.Errorf("ratios(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestRatioString(t *testing.T) {
	tests := []struct {
		in   summary
		want string
	}{
		{summary{}, "n/a"},
		{summary{median: math.NaN(), n: 1}, "n/a"},
		{summary{1.234, 1.234, 1.234, 1}, "1.23×"},
		{summary{1.1, 0.954, 1.306, 5}, "1.10× (0.95–1.31)"},
	}
	for _, tt := range tests {
		if got := tt.in.ratioString(); got != tt.want {
			t.Errorf("%+v.ratioString() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFmtRate(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{math.NaN(), "n/a"},
		{0, "0"},
		{950, "950"},
		{17083, "17.1 k"},
		{135000, "135 k"},
		{1013477, "1.01 M"},
	}
	for _, tt := range tests {
		if got := fmtRate(tt.in); got != tt.want {
			t.Errorf("fmtRate(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFmtSize(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{
		{0, "0 B"},
		{64, "64 B"},
		{1000, "1000 B"},
		{1 << 10, "1 KiB"},
		{4 << 10, "4 KiB"},
		{1536, "1536 B"},
		{16 << 20, "16 MiB"},
		{64 << 20, "64 MiB"},
		{1 << 30, "1 GiB"},
	}
	for _, tt := range tests {
		if got := fmtSize(tt.in); got != tt.want {
			t.Errorf("fmtSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMDTable(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{"header only", []string{"a", "b"}, nil, "| a | b |\n|---|---|\n"},
		{"rows", []string{"a", "b"}, [][]string{{"1", "2"}, {"3", "4"}},
			"| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"},
		{"short row padded", []string{"a", "b", "c"}, [][]string{{"1"}},
			"| a | b | c |\n|---|---|---|\n| 1 |  |  |\n"},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			if got := mdTable(tt.header, tt.rows); got != tt.want {
				t.Errorf("mdTable() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	one := func(x float64) summary { return summary{x, x, x, 1} }
	tests := []struct {
		name    string
		t       target
		met     bool
		wantRow []string
	}{
		{"at least, met", target{name: "a", got: summary{1.2, 1.1, 1.3, 5}, want: 1.1, atLeast: true, unit: "×"}, true,
			[]string{"a", "≥ 1.10×", "1.20× (1.10–1.30)", "met"}},
		{"at least, equal is met", target{name: "b", got: one(1.0), want: 1.0, atLeast: true, unit: "×"}, true,
			[]string{"b", "≥ 1.00×", "1.000×", "met"}},
		{"at least, missed", target{name: "c", got: one(0.95), want: 1.0, atLeast: true, unit: "×"}, false,
			[]string{"c", "≥ 1.00×", "0.95×", "**missed**"}},
		{"just missed shows 3 decimals", target{name: "c2", got: summary{0.998, 0.96, 1.01, 5}, want: 1.0, atLeast: true, unit: "×"}, false,
			[]string{"c2", "≥ 1.00×", "0.998× (0.960–1.010)", "**missed**"}},
		{"just met shows 3 decimals", target{name: "c3", got: one(1.004), want: 1.0, atLeast: true, unit: "×"}, true,
			[]string{"c3", "≥ 1.00×", "1.004×", "met"}},
		{"at most, met", target{name: "d", got: one(0.7), want: 0.8, unit: "×"}, true,
			[]string{"d", "≤ 0.80×", "0.70×", "met"}},
		{"at most, missed", target{name: "e", got: one(1.01), want: 1.0, unit: "×"}, false,
			[]string{"e", "≤ 1.00×", "1.01×", "**missed**"}},
		{"absolute unit", target{name: "f", got: one(123.45), want: 300, unit: "MiB"}, true,
			[]string{"f", "≤ 300 MiB", "123.5 MiB", "met"}},
		{"not measured", target{name: "g", got: summarize(nil), want: 1, atLeast: true, unit: "×"}, false,
			[]string{"g", "≥ 1.00×", "n/a", "**missed**"}},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			if got := tt.t.met(); got != tt.met {
				t.Errorf("met() = %v, want %v", got, tt.met)
			}
			if got := tt.t.row(); !slices.Equal(got, tt.wantRow) {
				t.Errorf("row() = %q, want %q", got, tt.wantRow)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		utime, stime uint64
		wantErr      bool
	}{
		{"plain", "1234 (shmgr) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0",
			250, 75, false},
		{"name with spaces and parens", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 5",
			7, 8, false},
		{"truncated", "1 (x) S 1 2 3", 0, 0, true},
		{"no name", "garbage", 0, 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			u, s, err := parseStat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat() error = %v, want error %v", err, tt.wantErr)
			}
			if u != tt.utime || s != tt.stime {
				t.Errorf("parseStat() = %d, %d, want %d, %d", u, s, tt.utime, tt.stime)
			}
		})
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tshmgr\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	tests := []struct {
		key     string
		want    int64
		wantErr bool
	}{
		{"VmRSS", 12345, false},
		{"VmPeak", 900, false},
		{"VmSwap", 0, true},
	}
	for _, tt := range tests {
		got, err := statusKB(status, tt.key)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("statusKB(%q) = %d, %v, want %d (error %v)", tt.key, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBannerField(t *testing.T) {
	banner := "shmgr host 0.1.0 (pid 1)\nlistening:  127.0.0.1:4242\nos name:    shmgr-c4f44b47-c4e36dca70 (posix_shm)\npartial: no newline"
	tests := []struct {
		prefix string
		want   string
		ok     bool
	}{
		{"listening:", "127.0.0.1:4242", true},
		{"shmgr host ", "0.1.0 (pid 1)", true},
		{"os name:", "shmgr-c4f44b47-c4e36dca70 (posix_shm)", true},
		{"token:", "", false},
		{"partial:", "", false}, // not a complete line yet
	}
	for _, tt := range tests {
		got, ok := bannerField(banner, tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("bannerField(%q) = %q, %v, want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
	if m := shmNameRE.FindStringSubmatch("shmgr-c4f44b47-c4e36dca70 (posix_shm)"); m == nil || m[1] != "shmgr-c4f44b47-" {
		t.Errorf("shmNameRE prefix = %q, want %q", m, "shmgr-c4f44b47-")
	}
}

func TestRedisVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=c4dfcc4a5d1a6a5e\n", "7.0.15"},
		{"something else\n", "something else"},
	}
	for _, tt := range tests {
		if got := redisVersion(tt.in); got != tt.want {
			t.Errorf("redisVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		rounds    int
		dur       time.Duration
		nConns    int
		idleConns int
		wantErr   bool
	}{
		{"defaults", nil, 5, 2 * time.Second, 9, 10000, false},
		{"quick", []string{"--quick"}, 1, 300 * time.Millisecond, 4, 1000, false},
		{"quick keeps explicit flags", []string{"--quick", "--rounds", "3", "--duration", "1s"}, 3, time.Second, 4, 1000, false},
		{"bad rounds", []string{"--rounds", "0"}, 0, 0, 0, 0, true},
		{"short duration", []string{"--duration", "1ms"}, 0, 0, 0, 0, true},
		{"bad sweep rounds", []string{"--sweep-rounds", "0"}, 0, 0, 0, 0, true},
		{"stray argument", []string{"extra"}, 0, 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if o.rounds != tt.rounds || o.dur != tt.dur || len(o.conns) != tt.nConns || o.idleConns != tt.idleConns {
				t.Errorf("parseFlags(%q) = rounds %d, duration %v, %d connection counts, %d idle, want %d, %v, %d, %d",
					tt.args, o.rounds, o.dur, len(o.conns), o.idleConns, tt.rounds, tt.dur, tt.nConns, tt.idleConns)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	tests := []struct {
		n     int
		thing string
		want  string
	}{
		{0, "round", "0 rounds"},
		{1, "round", "1 round"},
		{5, "run", "5 runs"},
	}
	for _, tt := range tests {
		if got := plural(tt.n, tt.thing); got != tt.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tt.n, tt.thing, got, tt.want)
		}
	}
}

func TestCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{[]int{0}, "0"},
		{[]int{1, 3}, "1,3"},
	}
	for _, tt := range tests {
		if got := cpuList(tt.in); got != tt.want {
			t.Errorf("cpuList(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// sameFloat compares floats, NaN equal to NaN, to a relative 1e-9.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
