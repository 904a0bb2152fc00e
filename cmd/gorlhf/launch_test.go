package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var launchTrain = []string{"train", "ppo", "--data.prompt_dataset=/data/prompts.jsonl", "--reward.rule=length"}

// renderedJobSet is the part of a rendered JobSet the command tests read.
type renderedJobSet struct {
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		ReplicatedJobs []struct {
			Name     string
			Replicas int
			Template struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Image string
								Args  []string
							}
						}
					}
				}
			}
		} `yaml:"replicatedJobs"`
	}
}

func launchK8sDoc(t *testing.T, args ...string) renderedJobSet {
	t.Helper()
	var out bytes.Buffer
	if err := launchK8s(args, &out); err != nil {
		t.Fatal(err)
	}
	var doc renderedJobSet
	if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return doc
}

// TestLaunchK8s: the placement flags are read out of the training
// command, the roles follow the algorithm, and the pods run the same
// command with --launcher=k8s.
func TestLaunchK8s(t *testing.T) {
	t.Run("GAEDefaults", func(t *testing.T) {
		doc := launchK8sDoc(t, append([]string{"--image", "reg/gorlhf:1", "--namespace", "rl", "--name", "run1", "--"}, launchTrain...)...)
		var groups []string
		for _, rj := range doc.Spec.ReplicatedJobs {
			groups = append(groups, rj.Name)
		}
		if !slices.Equal(groups, []string{"driver", "actor", "ref", "critic", "rollout"}) || doc.Metadata.Name != "run1" || doc.Metadata.Namespace != "rl" {
			t.Fatalf("groups %v, metadata %+v", groups, doc.Metadata)
		}
		driver := doc.Spec.ReplicatedJobs[0].Template.Spec.Template.Spec.Containers[0]
		wantArgs := append([]string{"train", "ppo", "--launcher=k8s"}, launchTrain[2:]...)
		if driver.Image != "reg/gorlhf:1" || !slices.Equal(driver.Args, wantArgs) {
			t.Fatalf("driver container %+v", driver)
		}
		worker := doc.Spec.ReplicatedJobs[1].Template.Spec.Template.Spec.Containers[0]
		if !slices.Equal(worker.Args, append([]string{"worker", "--"}, wantArgs...)) {
			t.Fatalf("worker args %v", worker.Args)
		}
	})
	t.Run("GRPOColocated", func(t *testing.T) {
		args := append([]string{"--image=img", "--"}, launchTrain...)
		args = append(args, "--launcher", "k8s", "--algo.advantage.estimator=group_norm", "--rollout.n_samples_per_prompt=4",
			"--actor.num_workers_per_node=2", "--ref.num_workers_per_node=2", "--train.colocate_actor_ref", "--rollout.num_engines=3")
		doc := launchK8sDoc(t, args...)
		var got []string
		for _, rj := range doc.Spec.ReplicatedJobs {
			got = append(got, rj.Name+"×"+string(rune('0'+rj.Replicas)))
		}
		if !slices.Equal(got, []string{"driver×1", "actor-ref×2", "rollout×3"}) {
			t.Fatalf("replicatedJobs %v", got)
		}
		if a := doc.Spec.ReplicatedJobs[0].Template.Spec.Template.Spec.Containers[0].Args; slices.Contains(a, "--launcher=k8s") {
			t.Fatalf("--launcher added twice: %v", a)
		}
	})
	t.Run("ConfigFile", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "run.yaml")
		if err := os.WriteFile(cfg, []byte("train:\n  colocate_all: true\nrollout:\n  num_engines: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		doc := launchK8sDoc(t, append([]string{"--image=img", "--"}, append(launchTrain, "--config", cfg)...)...)
		if n := len(doc.Spec.ReplicatedJobs); n != 2 || doc.Spec.ReplicatedJobs[1].Name != "all" {
			t.Fatalf("config file placement ignored: %d replicatedJobs", n)
		}
	})
}

func TestLaunchK8s_Errors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{append([]string{"--"}, launchTrain...), "an image is required (--image)"},
		{[]string{"--image=img"}, "give the training command after --"},
		{[]string{"--image=img", "--", "train", "sft"}, "only train ppo places roles"},
		{append([]string{"--image=img", "--"}, append(launchTrain, "--launcher=slurm")...), "launch k8s: the training command says --launcher slurm"},
		{append([]string{"--image=img", "--"}, append(launchTrain, "--actor.num_nodes=0")...), "--actor.num_nodes must be at least 1"},
		{append([]string{"--image=img", "--"}, append(launchTrain, "--train.colocate_actor_ref", "--ref.num_nodes=2")...), "their layouts differ"},
		{[]string{"--image=img", "--", "train", "ppo", "--reward.rule=length"}, "--data.prompt_dataset is required"},
		{[]string{"--image=img", "stray", "--", "train", "ppo"}, `unexpected argument "stray"`},
	}
	for _, tc := range cases {
		err := launchK8s(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestLaunchPlan(t *testing.T) {
	var out bytes.Buffer
	args := append([]string{"--"}, append(launchTrain, "--launcher=slurm", "--train.colocate_actor_ref")...)
	if err := launchPlan(args, &out); err != nil {
		t.Fatal(err)
	}
	want := `launcher slurm, 4 processes
group      roles       ranks  nodes × workers
driver     -           0      1 × 1
actor-ref  actor, ref  1      1 × 1
critic     critic      2      1 × 1
rollout    rollout     3      1 × 1
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	if err := launchPlan([]string{"x"}, &out); err == nil {
		t.Fatal("stray argument accepted")
	}
}

// TestLaunchEnv: under a Slurm task's variables, each rank finds its
// group in the plan of the same training command.
func TestLaunchEnv(t *testing.T) {
	train := append(slices.Clone(launchTrain), "--launcher=slurm", "--algo.advantage.estimator=group_norm", "--rollout.n_samples_per_prompt=2")
	// GRPO with KL: driver 0, actor 1, ref 2, rollout 3.
	for rank, group := range []string{"driver", "actor", "ref", "rollout"} {
		env := map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": string(rune('0' + rank)), "SLURM_NTASKS": "4", "SLURM_NODEID": "0",
			"SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_ID": "77"}
		var out bytes.Buffer
		err := launchEnv(append([]string{"--"}, train...), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "driver n1:7477 run \"77\" (slurm)") || !strings.Contains(out.String(), "  group "+group+" [") {
			t.Fatalf("rank %d:\n%s", rank, out.String())
		}
	}
	var out bytes.Buffer
	err := launchEnv([]string{"--rank=1"}, func(string) (string, bool) { return "", false }, &out)
	if err == nil || !strings.Contains(err.Error(), `--rank="1" gives the rank but nothing gives the world size`) {
		t.Fatalf("got %v", err)
	}
}
