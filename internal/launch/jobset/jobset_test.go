package jobset

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/launch"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is one plan and config whose rendering is kept in testdata.
type goldenCase struct {
	name  string
	plan  func(*launch.Config)
	needs launch.Needs
	cfg   func(*Config)
}

var trainArgs = []string{"train", "ppo", "--launcher=k8s", "--actor.model_name_or_path=stories260K", "--reward.rule=length"}

var goldenCases = []goldenCase{
	{"ppo_separate", func(*launch.Config) {}, launch.Needs{Critic: true, Reference: true, Reward: true}, func(*Config) {}},
	{"grpo_colocate_all", func(c *launch.Config) { c.Colocate.All = true }, launch.Needs{Reference: true}, func(c *Config) {
		c.Name, c.Namespace, c.ImagePullPolicy = "grpo-run", "rlhf", "IfNotPresent"
		c.Worker = Resources{CPU: "8", Memory: "32Gi", GPUs: 1}
		c.Driver = Resources{CPU: "500m", Memory: "2Gi"}
		c.Volume, c.MountPath = "rlhf-data", "/runs"
	}},
	{"ppo_2x2_colocated", func(c *launch.Config) {
		c.Actor = launch.RoleConfig{NumNodes: 2, NumWorkersPerNode: 2}
		c.Ref = c.Actor
		c.Colocate.ActorRef, c.Colocate.CriticReward = true, true
		c.RolloutEngines = 2
	}, launch.Needs{Critic: true, Reference: true, Reward: true}, func(c *Config) {
		c.DriverPort, c.SecretName, c.SecretKey = 9000, "shared-secret", "token"
		c.Worker.GPUs = 1
	}},
}

func render(t *testing.T, tc goldenCase) (launch.Plan, []byte) {
	t.Helper()
	pc := launch.DefaultConfig()
	pc.Launcher = launch.K8s
	tc.plan(&pc)
	p, err := launch.NewPlan(pc, tc.needs)
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Image = "ghcr.io/gorlhf/gorlhf:v0.1.0"
	c.DriverArgs = trainArgs
	c.WorkerArgs = append([]string{"worker", "--"}, trainArgs...)
	tc.cfg(&c)
	out, err := Render(p, c)
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

func TestRender_Golden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			_, out := render(t, tc)
			path := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("rendered YAML differs from %s (go test -update rewrites it):\n%s", path, out)
			}
			if _, again := render(t, tc); !bytes.Equal(out, again) {
				t.Fatal("Render is not deterministic")
			}
		})
	}
}

// TestRender_RanksAndDNS reads the YAML back: JobSet numbers its Jobs
// through the replicatedJobs in order (job-global-index), so each
// group's first Job must have the group's first plan rank; every pod
// reaches the driver at its JobSet DNS name.
func TestRender_RanksAndDNS(t *testing.T) {
	for _, tc := range goldenCases {
		p, out := render(t, tc)
		var doc struct {
			Metadata struct{ Name string }
			Spec     struct {
				ReplicatedJobs []struct {
					Name     string
					Replicas int
					Template struct {
						Spec struct {
							Template struct {
								Spec struct {
									Containers []struct {
										Env []struct{ Name, Value string }
									}
								}
							}
						}
					}
				} `yaml:"replicatedJobs"`
			}
		}
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Spec.ReplicatedJobs) != len(p.Groups) || doc.Spec.ReplicatedJobs[0].Name != launch.DriverGroup {
			t.Fatalf("%s: %d replicatedJobs for %d groups", tc.name, len(doc.Spec.ReplicatedJobs), len(p.Groups))
		}
		globalIndex := 0
		for i, rj := range doc.Spec.ReplicatedJobs {
			g := p.Groups[i]
			if rj.Name != g.Name || rj.Replicas != len(g.Ranks) || g.Ranks[0].Global != globalIndex {
				t.Fatalf("%s: replicatedJob %s (replicas %d, first global index %d) vs group %s (ranks %v)", tc.name, rj.Name, rj.Replicas, globalIndex, g.Name, g.Ranks)
			}
			globalIndex += rj.Replicas
			env := map[string]string{}
			for _, e := range rj.Template.Spec.Template.Spec.Containers[0].Env {
				env[e.Name] = e.Value
			}
			n := doc.Metadata.Name
			if !strings.HasPrefix(env[launch.VarDriverAddr], n+"-driver-0-0."+n+":") || env[launch.VarRunID] != n {
				t.Fatalf("%s: env %v", tc.name, env)
			}
		}
		if globalIndex != p.WorldSize {
			t.Fatalf("%s: %d Jobs for world size %d", tc.name, globalIndex, p.WorldSize)
		}
	}
}

func TestRender_Errors(t *testing.T) {
	pc := launch.DefaultConfig()
	pc.Launcher = launch.K8s
	p, err := launch.NewPlan(pc, launch.Needs{Critic: true})
	if err != nil {
		t.Fatal(err)
	}
	ok := DefaultConfig()
	ok.Image = "img"
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"NoImage", func(c *Config) { c.Image = "" }, "an image is required (--image)"},
		{"BadName", func(c *Config) { c.Name = "My_Run" }, `name "My_Run": want lower-case letters`},
		{"BadNamespace", func(c *Config) { c.Namespace = "-x" }, `namespace "-x"`},
		{"BadPort", func(c *Config) { c.DriverPort = 70000 }, "driver port 70000"},
		{"BadPull", func(c *Config) { c.ImagePullPolicy = "Sometimes" }, `image pull policy "Sometimes"`},
		{"BadQuantity", func(c *Config) { c.Worker.Memory = "lots" }, `worker memory "lots" is not a Kubernetes quantity`},
		{"NegativeGPUs", func(c *Config) { c.Driver.GPUs = -1 }, "driver GPUs -1"},
		{"RelativeMount", func(c *Config) { c.Volume, c.MountPath = "pvc", "data" }, `mount path "data" must be absolute`},
		{"LongName", func(c *Config) { c.Name = strings.Repeat("r", 50) }, "pod names such as " + strings.Repeat("r", 50) + "-rollout-0-0-abcde would exceed 63 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := Render(p, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	pc.Launcher = launch.Slurm
	slurm, _ := launch.NewPlan(pc, launch.Needs{})
	if _, err := Render(slurm, ok); err == nil || !strings.Contains(err.Error(), "the plan is for --launcher slurm, not k8s") {
		t.Fatalf("slurm plan rendered: %v", err)
	}
}
