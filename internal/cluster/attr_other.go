//go:build !linux

package cluster

import "syscall"

// childAttr: outside Linux the watch stream alone ends orphaned workers.
func childAttr() *syscall.SysProcAttr { return nil }
