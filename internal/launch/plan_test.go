package launch

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// groupsOf renders a plan's groups as "name[roles]=first-last" for
// compact comparisons.
func groupsOf(p Plan) string {
	var parts []string
	for _, g := range p.Groups {
		roles := make([]string, len(g.Roles))
		for i, r := range g.Roles {
			roles[i] = string(r)
		}
		parts = append(parts, fmt.Sprintf("%s[%s]=%s", g.Name, strings.Join(roles, ","), rankRange(g.Ranks)))
	}
	return strings.Join(parts, " ")
}

var (
	allNeeds  = Needs{Critic: true, Reference: true, Reward: true}
	grpoNeeds = Needs{Reference: true} // group baseline with KL, rule reward in the driver
)

// TestNewPlan_Colocation covers every combination of the three
// co-location flags, for a PPO run with every role and a GRPO run.
func TestNewPlan_Colocation(t *testing.T) {
	cases := []struct {
		actorRef, criticReward, all bool
		ppo, grpo                   string
	}{
		{false, false, false,
			"driver[]=0 actor[actor]=1 ref[ref]=2 critic[critic]=3 reward[reward]=4 rollout[rollout]=5",
			"driver[]=0 actor[actor]=1 ref[ref]=2 rollout[rollout]=3"},
		{true, false, false,
			"driver[]=0 actor-ref[actor,ref]=1 critic[critic]=2 reward[reward]=3 rollout[rollout]=4",
			"driver[]=0 actor-ref[actor,ref]=1 rollout[rollout]=2"},
		{false, true, false,
			"driver[]=0 actor[actor]=1 ref[ref]=2 critic-reward[critic,reward]=3 rollout[rollout]=4",
			"driver[]=0 actor[actor]=1 ref[ref]=2 rollout[rollout]=3"},
		{true, true, false,
			"driver[]=0 actor-ref[actor,ref]=1 critic-reward[critic,reward]=2 rollout[rollout]=3",
			"driver[]=0 actor-ref[actor,ref]=1 rollout[rollout]=2"},
		{false, false, true,
			"driver[]=0 all[actor,ref,critic,reward,rollout]=1",
			"driver[]=0 all[actor,ref,rollout]=1"},
		{true, false, true, "driver[]=0 all[actor,ref,critic,reward,rollout]=1", "driver[]=0 all[actor,ref,rollout]=1"},
		{false, true, true, "driver[]=0 all[actor,ref,critic,reward,rollout]=1", "driver[]=0 all[actor,ref,rollout]=1"},
		{true, true, true, "driver[]=0 all[actor,ref,critic,reward,rollout]=1", "driver[]=0 all[actor,ref,rollout]=1"},
	}
	for _, tc := range cases {
		for _, l := range []Launcher{Local, Slurm, K8s} {
			name := fmt.Sprintf("%s/actor_ref=%v,critic_reward=%v,all=%v", l, tc.actorRef, tc.criticReward, tc.all)
			t.Run(name, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Launcher = l
				cfg.Colocate = ColocateConfig{ActorRef: tc.actorRef, CriticReward: tc.criticReward, All: tc.all}
				for _, n := range []struct {
					needs Needs
					want  string
				}{{allNeeds, tc.ppo}, {grpoNeeds, tc.grpo}} {
					p, err := NewPlan(cfg, n.needs)
					if err != nil {
						t.Fatal(err)
					}
					if got := groupsOf(p); got != n.want {
						t.Errorf("needs %+v:\ngot  %s\nwant %s", n.needs, got, n.want)
					}
					last := p.Groups[len(p.Groups)-1].Ranks
					if p.WorldSize != last[len(last)-1].Global+1 || p.Launcher != l {
						t.Errorf("world size %d, launcher %s", p.WorldSize, p.Launcher)
					}
				}
			})
		}
	}
}

func TestNewPlan_Inproc(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Colocate.ActorRef = true // meaningless in one process, accepted
	p, err := NewPlan(cfg, allNeeds)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := groupsOf(p), "driver[actor,ref,critic,reward,rollout]=0"; got != want || p.WorldSize != 1 {
		t.Fatalf("got %s (world %d), want %s", got, p.WorldSize, want)
	}
	p, err = NewPlan(cfg, Needs{})
	if err != nil || groupsOf(p) != "driver[actor,rollout]=0" {
		t.Fatalf("minimal inproc plan: %s, %v", groupsOf(p), err)
	}
}

// TestNewPlan_Layouts: several nodes and workers per role give
// node-major ranks, and co-located roles keep their shared layout.
func TestNewPlan_Layouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Launcher = Slurm
	cfg.Actor = RoleConfig{NumNodes: 2, NumWorkersPerNode: 2}
	cfg.Ref = cfg.Actor
	cfg.Critic = RoleConfig{NumNodes: 1, NumWorkersPerNode: 2}
	cfg.RolloutEngines = 3
	cfg.Colocate.ActorRef = true
	p, err := NewPlan(cfg, Needs{Critic: true, Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := groupsOf(p), "driver[]=0 actor-ref[actor,ref]=1-4 critic[critic]=5-6 rollout[rollout]=7-9"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	actor := p.Groups[1]
	wantRanks := []Rank{{1, 0, 0}, {2, 0, 1}, {3, 1, 0}, {4, 1, 1}}
	if !reflect.DeepEqual(actor.Ranks, wantRanks) || actor.NumNodes != 2 || actor.WorkersPerNode != 2 {
		t.Fatalf("actor group %+v", actor)
	}
	if r := p.Groups[3]; r.NumNodes != 1 || r.WorkersPerNode != 3 {
		t.Fatalf("rollout group %+v", r)
	}
	want := `launcher slurm, 10 processes
group      roles       ranks  nodes × workers
driver     -           0      1 × 1
actor-ref  actor, ref  1-4    2 × 2
critic     critic      5-6    1 × 2
rollout    rollout     7-9    1 × 3
`
	if got := p.String(); got != want {
		t.Fatalf("String():\n%s\nwant:\n%s", got, want)
	}
	again, _ := NewPlan(cfg, Needs{Critic: true, Reference: true})
	if !reflect.DeepEqual(p, again) {
		t.Fatal("NewPlan is not deterministic")
	}
}

func TestNewPlan_Errors(t *testing.T) {
	two := RoleConfig{NumNodes: 2, NumWorkersPerNode: 1}
	cases := []struct {
		name  string
		edit  func(*Config)
		needs Needs
		want  string
	}{
		{"UnknownLauncher", func(c *Config) { c.Launcher = "ray" }, allNeeds, `--launcher: unknown launcher "ray"`},
		{"ZeroNodes", func(c *Config) { c.Launcher = Local; c.Critic.NumNodes = 0 }, allNeeds, "--critic.num_nodes must be at least 1, got 0"},
		{"ZeroEngines", func(c *Config) { c.Launcher = Local; c.RolloutEngines = 0 }, allNeeds, "--rollout.num_engines must be at least 1, got 0"},
		{"InprocSeveral", func(c *Config) { c.Actor = two }, allNeeds, "--actor.num_nodes=2 --actor.num_workers_per_node=1 needs several processes: use --launcher local, slurm or k8s"},
		{"InprocEngines", func(c *Config) { c.RolloutEngines = 2 }, allNeeds, "--rollout.num_engines=2 needs several processes"},
		{"ActorRefLayouts", func(c *Config) { c.Launcher = Slurm; c.Colocate.ActorRef = true; c.Actor = two }, allNeeds,
			"--train.colocate_actor_ref puts actor and ref in the same processes: their layouts differ (--actor.num_nodes=2 --actor.num_workers_per_node=1 vs --ref.num_nodes=1 --ref.num_workers_per_node=1)"},
		{"CriticRewardLayouts", func(c *Config) { c.Launcher = K8s; c.Colocate.CriticReward = true; c.Reward = two }, allNeeds,
			"--train.colocate_critic_reward puts critic and reward in the same processes"},
		{"AllLayouts", func(c *Config) { c.Launcher = Local; c.Colocate.All = true; c.Critic = two }, allNeeds,
			"--train.colocate_all puts actor and critic in the same processes"},
		{"AllEngines", func(c *Config) {
			c.Launcher = Local
			c.Colocate.All = true
			c.Actor, c.Ref = two, two
		}, grpoNeeds, "--rollout.num_engines=1 must equal --actor.num_nodes × --actor.num_workers_per_node = 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			_, err := NewPlan(cfg, tc.needs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A role the run does not need is not checked: no critic in GRPO.
	cfg := DefaultConfig()
	cfg.Launcher, cfg.Colocate.All, cfg.Critic = Local, true, two
	if _, err := NewPlan(cfg, grpoNeeds); err != nil {
		t.Fatalf("unneeded critic layout checked: %v", err)
	}
}

func TestPlan_PlaceAssign(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Launcher = Slurm
	cfg.Actor = RoleConfig{NumNodes: 1, NumWorkersPerNode: 2}
	p, err := NewPlan(cfg, Needs{Reward: true})
	if err != nil {
		t.Fatal(err)
	}
	// driver 0, actor 1-2, reward 3, rollout 4
	for rank, want := range []string{"driver", "actor", "actor", "reward", "rollout"} {
		id, err := ParseEnv(lookupMap(map[string]string{"SLURM_STEP_ID": "0", "SLURM_PROCID": fmt.Sprint(rank), "SLURM_NTASKS": "5", "SLURM_JOB_NODELIST": "n[1-2]"}), Flags{})
		if err != nil {
			t.Fatal(err)
		}
		g, r, err := p.Assign(id)
		if err != nil || g.Name != want || r.Global != rank {
			t.Fatalf("rank %d: group %s rank %+v, %v; want %s", rank, g.Name, r, err, want)
		}
	}
	if _, r, _ := p.Place(2); r != (Rank{Global: 2, Node: 0, Local: 1}) {
		t.Fatalf("Place(2) = %+v", r)
	}
	if g, ok := p.Host(Reward); !ok || g.Name != "reward" {
		t.Fatalf("Host(reward) = %v, %v", g.Name, ok)
	}
	if _, ok := p.Host(Critic); ok {
		t.Fatal("critic placed without being needed")
	}
	if _, _, err := p.Place(5); err == nil || !strings.Contains(err.Error(), "rank 5 is outside the plan's 5 processes") {
		t.Fatalf("Place(5): %v", err)
	}
	id := Identity{Rank: 0, WorldSize: 3, From: map[string]string{"world_size": "SLURM_NTASKS"}}
	if _, _, err := p.Assign(id); err == nil || !strings.Contains(err.Error(), "the launcher started 3 processes (SLURM_NTASKS) but the placement needs 5 (under Slurm: srun --ntasks=5)") {
		t.Fatalf("Assign with the wrong world size: %v", err)
	}
}

func TestConfig_RegisterFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	args := []string{"--launcher", "k8s", "--actor.num_nodes=2", "--actor.num_workers_per_node=4", "--ref.num_nodes=3",
		"--critic.num_workers_per_node=2", "--reward.num_nodes=5", "--rollout.num_engines=6",
		"--train.colocate_actor_ref", "--train.colocate_critic_reward=true", "--train.colocate_all"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := Config{Launcher: K8s, Actor: RoleConfig{2, 4}, Ref: RoleConfig{3, 1}, Critic: RoleConfig{1, 2}, Reward: RoleConfig{5, 1},
		RolloutEngines: 6, Colocate: ColocateConfig{ActorRef: true, CriticReward: true, All: true}}
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	if err := fs.Parse([]string{"--launcher=ray"}); err == nil || !strings.Contains(err.Error(), `unknown launcher "ray"`) {
		t.Fatalf("bad launcher: %v", err)
	}
}
