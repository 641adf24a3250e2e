//go:build !race

package region_test

// raceEnabled: the race detector slows every copy of shared memory down
// many times; tests shrink their regions under it.
const raceEnabled = false
