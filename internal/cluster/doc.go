// Package cluster is the run-time glue between the driver (rank 0) and
// its worker processes, whatever launcher started them: the rendezvous
// where workers register (authenticated by the run secret, refused on a
// version or config-digest mismatch) and keep a watch stream open, so a
// dead worker is noticed by the driver and a dead driver by every worker;
// and the local launcher's supervisor, which starts worker processes on
// this host, keeps their logs and reports the first that dies. It holds
// no scheduling logic of its own: Slurm, Kubernetes, torchrun or the
// local supervisor start the processes; package launch says which roles
// go where.
package cluster
