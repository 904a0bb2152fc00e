//go:build !unix

package main

// maxRSSMB is unknown here (no getrusage): 0.
func maxRSSMB() float64 { return 0 }

// cpuSeconds is unknown here (no getrusage): 0.
func cpuSeconds() float64 { return 0 }
