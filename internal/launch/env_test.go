package launch

import (
	"flag"
	"strings"
	"testing"
)

// lookupMap is a LookupFunc over a fixed environment.
func lookupMap(env map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// ident is the comparable part of an Identity.
type ident struct {
	rank, world, local, node int
	host                     string
	port                     int
	run                      string
	kind                     EnvKind
}

func identOf(id Identity) ident {
	return ident{id.Rank, id.WorldSize, id.LocalRank, id.NodeRank, id.DriverHost, id.DriverPort, id.RunID, id.Env}
}

func TestParseEnv_Launchers(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		flags Flags
		want  ident
		from  map[string]string // a few origins to check
	}{
		{"Nothing", nil, Flags{},
			ident{0, 1, 0, 0, "127.0.0.1", DefaultDriverPort, "", EnvNone}, map[string]string{"rank": "default", "driver_host": "default"}},
		{"Torchrun", map[string]string{"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "GROUP_RANK": "1",
			"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "abc", "LOCAL_WORLD_SIZE": "2"}, Flags{},
			ident{3, 4, 1, 1, "10.0.0.1", 29501, "abc", EnvTorchrun}, map[string]string{"rank": "RANK", "driver_port": "MASTER_PORT"}},
		{"Slurm", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "0", "SLURM_NODEID": "1",
			"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_ID": "42"}, Flags{},
			ident{2, 3, 0, 1, "n1", DefaultDriverPort, "42", EnvSlurm}, map[string]string{"world_size": "SLURM_NTASKS", "driver_host": "SLURM_JOB_NODELIST"}},
		{"SlurmStep", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "2",
			"SLURM_JOB_NODELIST": "gpu[01-04]", "SLURM_STEP_NODELIST": "gpu[03-04]", "SLURM_JOB_ID": "7"}, Flags{},
			ident{0, 2, 0, 0, "gpu03", DefaultDriverPort, "7", EnvSlurm}, map[string]string{"world_size": "SLURM_STEP_NUM_TASKS", "driver_host": "SLURM_STEP_NODELIST"}},
		{"OpenMPI", map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
			"OMPI_COMM_WORLD_NODE_RANK": "0", "PMIX_RANK": "1", "PMIX_NAMESPACE": "prterun-h-123@1"}, Flags{},
			ident{1, 2, 1, 0, "127.0.0.1", DefaultDriverPort, "prterun-h-123@1", EnvOpenMPI}, map[string]string{"rank": "OMPI_COMM_WORLD_RANK"}},
		{"OpenMPIDriverAddr", map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_NODE_RANK": "1",
			VarDriverAddr: "head:9000"}, Flags{},
			ident{3, 4, 0, 1, "head", 9000, "", EnvOpenMPI}, map[string]string{"driver_host": VarDriverAddr, "driver_port": VarDriverAddr}},
		{"PMIxOnly", map[string]string{"PMIX_RANK": "2", "PMIX_NAMESPACE": "ns", VarWorldSize: "3"}, Flags{},
			ident{2, 3, 0, 0, "127.0.0.1", DefaultDriverPort, "ns", EnvOpenMPI}, map[string]string{"rank": "PMIX_RANK", "world_size": VarWorldSize}},
		{"MPIInSlurm", map[string]string{"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_NODE_RANK": "1",
			"SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "a1,b[01-02]", "SLURM_JOB_ID": "9"}, Flags{},
			ident{2, 4, 0, 1, "a1", DefaultDriverPort, "9", EnvOpenMPI}, map[string]string{"rank": "OMPI_COMM_WORLD_RANK", "run_id": "SLURM_JOB_ID"}},
		{"TorchrunInSlurm", map[string]string{"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "GROUP_RANK": "2",
			"MASTER_ADDR": "n1", "MASTER_PORT": "29500", "SLURM_STEP_ID": "0", "SLURM_PROCID": "2", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "n[1-4]", "SLURM_JOB_ID": "11"}, Flags{},
			ident{5, 8, 1, 2, "n1", 29501, "11", EnvTorchrun}, map[string]string{"driver_host": "MASTER_ADDR", "run_id": "SLURM_JOB_ID"}},
		{"JobSet", map[string]string{"JOB_COMPLETION_INDEX": "2", VarWorldSize: "3", VarDriverAddr: "rl-driver-0-0.rl:7000"}, Flags{},
			ident{2, 3, 0, 0, "rl-driver-0-0.rl", 7000, "", EnvJobSet}, map[string]string{"rank": "JOB_COMPLETION_INDEX"}},
		{"JobSetRendered", map[string]string{"JOB_COMPLETION_INDEX": "0", VarRank: "4", VarWorldSize: "6", VarRunID: "rl",
			VarDriverAddr: "rl-driver-0-0.rl:7477"}, Flags{},
			ident{4, 6, 0, 0, "rl-driver-0-0.rl", 7477, "rl", EnvJobSet}, map[string]string{"rank": VarRank}},
		{"Trainer", map[string]string{"PET_NODE_RANK": "1", "PET_NNODES": "2", "PET_NPROC_PER_NODE": "1",
			"PET_MASTER_ADDR": "tj-node-0-0.tj", "PET_MASTER_PORT": "29400", "JOB_COMPLETION_INDEX": "0"}, Flags{},
			ident{1, 2, 0, 1, "tj-node-0-0.tj", 29400, "", EnvTrainer}, map[string]string{"rank": "PET_NODE_RANK", "node_rank": "PET_NODE_RANK"}},
		{"TorchrunInTrainer", map[string]string{"RANK": "3", "WORLD_SIZE": "4", "MASTER_ADDR": "tj-node-0-0.tj", "MASTER_PORT": "29400",
			"PET_NODE_RANK": "1", "PET_NNODES": "2", "PET_MASTER_ADDR": "tj-node-0-0.tj", "PET_MASTER_PORT": "29400", "JOB_COMPLETION_INDEX": "0"}, Flags{},
			ident{3, 4, 0, 0, "tj-node-0-0.tj", 29401, "", EnvTorchrun}, nil},
		{"GorlhfOnly", map[string]string{VarRank: "1", VarWorldSize: "2", VarLocalRank: "1", VarNodeRank: "0",
			VarDriverAddr: "[::1]:7100", VarRunID: "r1"}, Flags{},
			ident{1, 2, 1, 0, "::1", 7100, "r1", EnvNone}, map[string]string{"local_rank": VarLocalRank}},
		{"GorlhfHostOnly", map[string]string{VarDriverAddr: "::1"}, Flags{},
			ident{0, 1, 0, 0, "::1", DefaultDriverPort, "", EnvNone}, nil},
		{"GorlhfOverSlurm", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "n[1-2]",
			VarRank: "2", VarDriverAddr: "head"}, Flags{},
			ident{2, 3, 0, 0, "head", DefaultDriverPort, "", EnvSlurm}, map[string]string{"rank": VarRank, "world_size": "SLURM_NTASKS"}},
		{"FlagsOverAll", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "3", VarRank: "2", VarWorldSize: "5", VarRunID: "env"},
			Flags{Rank: "0", WorldSize: "4", LocalRank: "1", NodeRank: "0", DriverAddr: "10.1.1.1:8000", RunID: "flag"},
			ident{0, 4, 1, 0, "10.1.1.1", 8000, "flag", EnvSlurm}, map[string]string{"rank": "--rank", "world_size": "--world_size", "driver_port": "--driver_addr"}},
		{"SlurmBatchWithGorlhfRank", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "n[1-2]", VarRank: "0", VarWorldSize: "1"}, Flags{},
			ident{0, 1, 0, 0, "n1", DefaultDriverPort, "", EnvSlurm}, map[string]string{"rank": VarRank}},
		{"EmptyIsUnset", map[string]string{VarRank: "", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "n1"}, Flags{},
			ident{1, 2, 0, 0, "n1", DefaultDriverPort, "", EnvSlurm}, map[string]string{"rank": "SLURM_PROCID"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ParseEnv(lookupMap(tc.env), tc.flags)
			if err != nil {
				t.Fatal(err)
			}
			if got := identOf(id); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			for k, v := range tc.from {
				if id.From[k] != v {
					t.Errorf("From[%s] = %q, want %q", k, id.From[k], v)
				}
			}
		})
	}
}

func TestParseEnv_Errors(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		flags Flags
		want  string
	}{
		{"NonNumericRank", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "x", "SLURM_NTASKS": "2"}, Flags{}, `SLURM_PROCID="x": not a whole number`},
		{"SlurmBatchScript", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "12", "SLURM_JOB_NODELIST": "n[1-2]"}, Flags{},
			"SLURM_PROCID is set but SLURM_STEP_ID is not: this is the batch script of Slurm job 12, not a task of srun"},
		{"NonNumericFlag", nil, Flags{Rank: "one", WorldSize: "2"}, `--rank="one": not a whole number`},
		{"RankNotBelowWorld", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "n1"}, Flags{},
			"rank 3 (SLURM_PROCID) is not below the world size 3 (SLURM_NTASKS)"},
		{"FlagRankNotBelowEnvWorld", map[string]string{VarWorldSize: "2"}, Flags{Rank: "2"}, "rank 2 (--rank) is not below the world size 2 (GORLHF_WORLD_SIZE)"},
		{"ZeroWorld", map[string]string{VarRank: "0", VarWorldSize: "0"}, Flags{}, `GORLHF_WORLD_SIZE="0": must be at least 1`},
		{"NegativeLocal", map[string]string{"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "-1"}, Flags{}, `LOCAL_RANK="-1": must be at least 0`},
		{"RankWithoutWorld", map[string]string{"RANK": "1"}, Flags{}, `RANK="1" gives the rank but nothing gives the world size`},
		{"WorldWithoutRank", map[string]string{"WORLD_SIZE": "2"}, Flags{}, `WORLD_SIZE="2" gives the world size but nothing gives the rank`},
		{"JobSetWithoutWorld", map[string]string{"JOB_COMPLETION_INDEX": "1"}, Flags{}, `JOB_COMPLETION_INDEX="1" gives the rank but nothing gives the world size (set GORLHF_WORLD_SIZE`},
		{"TorchrunAndMPI", map[string]string{"RANK": "0", "WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, Flags{},
			`conflicting launcher environments: torchrun (RANK="0") and openmpi (OMPI_COMM_WORLD_RANK="1")`},
		{"SlurmAndJobSet", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "JOB_COMPLETION_INDEX": "2"}, Flags{},
			`conflicting launcher environments: slurm (SLURM_PROCID="0") and jobset (JOB_COMPLETION_INDEX="2")`},
		{"TrainerAndSlurm", map[string]string{"PET_NODE_RANK": "0", "PET_NNODES": "1", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, Flags{},
			`conflicting launcher environments: trainer (PET_NODE_RANK="0") and slurm (SLURM_PROCID="0")`},
		{"OMPIAndPMIxDisagree", map[string]string{"OMPI_COMM_WORLD_RANK": "1", "PMIX_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}, Flags{},
			`OMPI_COMM_WORLD_RANK="1" and PMIX_RANK="0" disagree`},
		{"BadHostlist", map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "n[1-"}, Flags{},
			`SLURM_JOB_NODELIST="n[1-": host list: '[' without ']'`},
		{"MasterPortTop", map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "65535"}, Flags{}, `MASTER_PORT="65535" gives driver port 65536, want 1-65535`},
		{"BadMasterPort", map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "http"}, Flags{}, `MASTER_PORT="http": not a port number`},
		{"BadDriverPort", map[string]string{VarDriverAddr: "head:port"}, Flags{}, `GORLHF_DRIVER_ADDR="port": not a whole number`},
		{"RemoteNodeWithoutDriver", map[string]string{"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_NODE_RANK": "1"}, Flags{},
			"node rank 1 (OMPI_COMM_WORLD_NODE_RANK): this process is not on the driver's host and nothing says where the driver is (set GORLHF_DRIVER_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnv(lookupMap(tc.env), tc.flags)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "launch: ") || strings.Count(err.Error(), "launch: ") != 1 {
				t.Errorf("error %q should start with one \"launch: \"", err)
			}
		})
	}
}

func TestFlags_RegisterFlags(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f.RegisterFlags(fs)
	if err := fs.Parse([]string{"--rank=1", "--world_size", "3", "--driver_addr=h:1", "--run_id=r"}); err != nil {
		t.Fatal(err)
	}
	id, err := ParseEnv(lookupMap(map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}), f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), `rank 1/3 local 0 node 0 driver h:1 run "r" (slurm)`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
