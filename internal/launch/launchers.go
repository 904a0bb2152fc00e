package launch

import (
	"fmt"
	"slices"
	"strconv"
)

// The launcher layers of the contract, innermost first: when launchers
// nest, the earlier one in this list started this process.
var launcherReaders = []func(LookupFunc) (source, bool, error){
	readTorchrun, readOpenMPI, readTrainer, readSlurm, readJobSet,
}

// nests lists, for each launcher, the launchers it may run inside.
var nests = map[EnvKind][]EnvKind{
	EnvTorchrun: {EnvTrainer, EnvSlurm, EnvJobSet}, // srun torchrun …; Trainer's torch runtime
	EnvOpenMPI:  {EnvSlurm},                        // mpirun inside an sbatch allocation
	EnvTrainer:  {EnvJobSet},                       // Trainer v2 is built on JobSet
}

// detect returns the launchers whose variables are set, innermost first,
// and checks that they nest in a known way.
func detect(lookup LookupFunc) ([]source, error) {
	var found []source
	for _, read := range launcherReaders {
		s, ok, err := read(lookup)
		if err != nil {
			return nil, err
		}
		if ok {
			found = append(found, s)
		}
	}
	for i, inner := range found {
		for _, outer := range found[i+1:] {
			if !nestsIn(inner.kind, outer.kind) {
				return nil, fmt.Errorf("launch: conflicting launcher environments: %s (%s=%q) and %s (%s=%q); unset one, or set %s and %s",
					inner.kind, inner.key.from, inner.key.val, outer.kind, outer.key.from, outer.key.val, VarRank, VarWorldSize)
			}
		}
	}
	return found, nil
}

func nestsIn(inner, outer EnvKind) bool { return slices.Contains(nests[inner], outer) }

// readTorchrun reads torchrun's (torch.distributed.run) variables.
func readTorchrun(lookup LookupFunc) (source, bool, error) {
	s := source{kind: EnvTorchrun}
	s.s[fRank] = env(lookup, "RANK")
	s.s[fWorld] = env(lookup, "WORLD_SIZE")
	if !s.s[fRank].set() && !s.s[fWorld].set() {
		return s, false, nil
	}
	s.key = s.s[fRank]
	if !s.key.set() {
		s.key = s.s[fWorld]
	}
	s.s[fLocal] = env(lookup, "LOCAL_RANK")
	s.s[fNode] = env(lookup, "GROUP_RANK")
	s.s[fHost] = env(lookup, "MASTER_ADDR")
	if p := env(lookup, "MASTER_PORT"); p.set() {
		p.conv = plusOne // torchrun's agent store already listens on MASTER_PORT
		s.s[fPort] = p
	}
	s.s[fRunID] = env(lookup, "TORCHELASTIC_RUN_ID")
	return s, true, nil
}

// plusOne is the driver port under torchrun: MASTER_PORT + 1.
func plusOne(v string) (string, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return "", fmt.Errorf("not a port number")
	}
	return strconv.Itoa(n + 1), nil
}

// readOpenMPI reads Open MPI's OMPI_COMM_WORLD_* and PMIx's variables.
// When both give a rank they must agree.
func readOpenMPI(lookup LookupFunc) (source, bool, error) {
	s := source{kind: EnvOpenMPI}
	ompi, pmix := env(lookup, "OMPI_COMM_WORLD_RANK"), env(lookup, "PMIX_RANK")
	switch {
	case !ompi.set() && !pmix.set():
		return s, false, nil
	case ompi.set() && pmix.set() && ompi.val != pmix.val:
		return s, false, fmt.Errorf("launch: OMPI_COMM_WORLD_RANK=%q and PMIX_RANK=%q disagree", ompi.val, pmix.val)
	case ompi.set():
		s.s[fRank] = ompi
	default:
		s.s[fRank] = pmix
	}
	s.key = s.s[fRank]
	s.s[fWorld] = env(lookup, "OMPI_COMM_WORLD_SIZE")
	s.s[fLocal] = env(lookup, "OMPI_COMM_WORLD_LOCAL_RANK")
	s.s[fNode] = env(lookup, "OMPI_COMM_WORLD_NODE_RANK")
	s.s[fRunID] = env(lookup, "PMIX_NAMESPACE")
	return s, true, nil
}

// readTrainer reads Kubeflow Trainer v2's torch variables (PET_*): one
// process per node, so the node rank is the rank.
func readTrainer(lookup LookupFunc) (source, bool, error) {
	s := source{kind: EnvTrainer}
	s.s[fRank] = env(lookup, "PET_NODE_RANK")
	s.s[fWorld] = env(lookup, "PET_NNODES")
	if !s.s[fRank].set() && !s.s[fWorld].set() {
		return s, false, nil
	}
	s.key = s.s[fRank]
	if !s.key.set() {
		s.key = s.s[fWorld]
	}
	s.s[fNode] = s.s[fRank]
	s.s[fHost] = env(lookup, "PET_MASTER_ADDR")
	s.s[fPort] = env(lookup, "PET_MASTER_PORT")
	return s, true, nil
}

// readSlurm reads the variables srun gives each task. The driver (rank
// 0) runs on the first host of the step's node list (of the job's when
// the step's is absent). A batch script also has SLURM_PROCID=0 and the
// job's SLURM_NTASKS but no step id: its rank is refused, so that a
// command started without srun does not wait for tasks that never come.
func readSlurm(lookup LookupFunc) (source, bool, error) {
	s := source{kind: EnvSlurm}
	s.s[fRank] = env(lookup, "SLURM_PROCID")
	if !s.s[fRank].set() {
		return s, false, nil
	}
	s.key = s.s[fRank]
	if !env(lookup, "SLURM_STEP_ID").set() && !env(lookup, "SLURM_STEPID").set() {
		job, _ := lookup("SLURM_JOB_ID")
		s.rankErr = fmt.Errorf("launch: SLURM_PROCID is set but SLURM_STEP_ID is not: this is the batch script of Slurm job %s, not a task of srun; start every rank with srun (see deploy/slurm/ppo.sbatch)", job)
	}
	s.s[fWorld] = first(env(lookup, "SLURM_STEP_NUM_TASKS"), env(lookup, "SLURM_NTASKS"), env(lookup, "SLURM_NPROCS"))
	s.s[fLocal] = env(lookup, "SLURM_LOCALID")
	s.s[fNode] = env(lookup, "SLURM_NODEID")
	if h := first(env(lookup, "SLURM_STEP_NODELIST"), env(lookup, "SLURM_JOB_NODELIST"), env(lookup, "SLURM_NODELIST")); h.set() {
		h.conv = firstHost
		s.s[fHost] = h
	}
	s.s[fRunID] = env(lookup, "SLURM_JOB_ID")
	return s, true, nil
}

// readJobSet reads a Kubernetes Indexed Job's completion index (JobSet
// pods are Indexed Job pods). The index is the rank; the world size must
// come from GORLHF_WORLD_SIZE or a flag.
func readJobSet(lookup LookupFunc) (source, bool, error) {
	s := source{kind: EnvJobSet}
	s.s[fRank] = env(lookup, "JOB_COMPLETION_INDEX")
	if !s.s[fRank].set() {
		return s, false, nil
	}
	s.key = s.s[fRank]
	return s, true, nil
}

// first returns the first set setting.
func first(ss ...setting) setting {
	for _, s := range ss {
		if s.set() {
			return s
		}
	}
	return setting{}
}

// firstHost is the first host of a Slurm host list.
func firstHost(list string) (string, error) {
	hosts, err := expandHostlist(list)
	if err != nil {
		return "", fmt.Errorf("host list: %w", err)
	}
	return hosts[0], nil
}
