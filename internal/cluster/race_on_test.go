//go:build race

package cluster

// raceOn: the race detector slows the copying of large writes severalfold.
const raceOn = true
