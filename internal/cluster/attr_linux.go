package cluster

import "syscall"

// childAttr puts a worker in its own process group and asks the kernel to
// SIGKILL it when the driver dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
