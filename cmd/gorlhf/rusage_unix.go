//go:build unix

package main

import (
	"runtime"
	"syscall"
)

// maxRSSMB is getrusage's ru_maxrss in MB (KiB on Linux and the BSDs,
// bytes on macOS); 0 when the call fails.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / 1024
}

// cpuSeconds is the process's user + system CPU time so far; 0 when the
// call fails.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
