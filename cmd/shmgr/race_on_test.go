//go:build race

package main_test

// raceOn: the race detector slows the copying of large writes severalfold.
const raceOn = true
