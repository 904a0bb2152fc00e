//go:build !unix

package main

// maxRSSMB is unknown here (no getrusage): 0.
func maxRSSMB() float64 { return 0 }
