// Package placement puts a run's roles where its plan (package launch)
// says: all in the driver's process for the inproc launcher, or in
// worker processes that the local launcher starts here and Slurm or
// Kubernetes start elsewhere. The driver opens the rendezvous (package
// cluster), waits for its workers, dials each one's role server (package
// role/remote) and hands the trainer a role.Set it cannot tell from the
// in-process one; the actor's weights go to the rollout engine over the
// data plane (package transfer), worker to worker. A worker builds the
// roles of its placement group with the same builder the driver would
// use, serves them, registers, and exits when the driver ends the run or
// disappears. A dead worker cancels the driver's run with an error that
// names its rank, roles, host and exit status.
package placement
