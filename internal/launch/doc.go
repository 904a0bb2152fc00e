// Package launch decides where the processes of a run go and who each
// process is, without starting anything itself: an existing launcher
// (Slurm's srun, Kubernetes JobSet, torchrun, mpirun, or the driver for
// --launcher local) starts the processes.
//
// It has three parts, all pure functions of their inputs:
//
//   - ParseEnv: the environment contract. A process learns its rank, the
//     world size, its local and node rank, the driver's address and the
//     run id from command-line flags, then GORLHF_* variables, then the
//     variables of whichever launcher started it (see docs/DISTRIBUTED.md
//     for the table). The caller passes a lookup function (os.LookupEnv in
//     cmd/gorlhf); nothing here reads the environment.
//   - ExpandHostlist: Slurm's compressed host lists (n[1-3,5]); the
//     driver runs on the first host.
//   - NewPlan: the placement plan. From the per-role settings (OpenRLHF's
//     --actor.num_nodes, --actor.num_workers_per_node, …, the
//     --train.colocate_* flags) and the roles a run needs, it lists the
//     placement groups (processes hosting one or more roles), their ranks
//     and the world size; rank 0 is always the driver.
//
// Package launch/jobset renders a Plan as a Kubernetes JobSet.
package launch
