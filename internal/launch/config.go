package launch

import (
	"errors"
	"flag"
	"fmt"
)

// Launcher says what starts the processes of a run.
type Launcher string

// The launchers a run can use.
const (
	Inproc Launcher = "inproc" // every role in the driver's process (the default)
	Local  Launcher = "local"  // the driver starts one process per rank on this host and supervises them
	Slurm  Launcher = "slurm"  // srun starts every rank with the same command; rank 0 is the driver
	K8s    Launcher = "k8s"    // one Kubernetes JobSet (gorlhf launch k8s renders it)
)

var launchers = []Launcher{Inproc, Local, Slurm, K8s}

// String implements flag.Value.
func (l *Launcher) String() string { return string(*l) }

// Set implements flag.Value.
func (l *Launcher) Set(s string) error {
	for _, k := range launchers {
		if string(k) == s {
			*l = k
			return nil
		}
	}
	return fmt.Errorf("unknown launcher %q (want inproc, local, slurm or k8s)", s)
}

// Role is one of the RL roles a placement group can host (see package
// role): the names are OpenRLHF's flag prefixes.
type Role string

// The placeable roles, in placement order.
const (
	Actor     Role = "actor"
	Reference Role = "ref"
	Critic    Role = "critic"
	Reward    Role = "reward"
	Rollout   Role = "rollout"
)

// Needs says which optional roles a run builds; the actor and the rollout
// engine are always needed.
type Needs struct {
	Critic    bool // GAE only
	Reference bool // a KL penalty with a positive coefficient
	// Reward is a reward model. Rule graders and remote reward servers
	// are light and stay in the driver; an environment (--agent.env)
	// gives its own rewards.
	Reward bool
}

// roles lists the needed roles in placement order.
func (n Needs) roles() []Role {
	out := []Role{Actor}
	if n.Reference {
		out = append(out, Reference)
	}
	if n.Critic {
		out = append(out, Critic)
	}
	if n.Reward {
		out = append(out, Reward)
	}
	return append(out, Rollout)
}

// RoleConfig is the layout of one model role's processes.
type RoleConfig struct {
	NumNodes          int // nodes the role spans; default 1
	NumWorkersPerNode int // worker processes on each of them; default 1
}

// Size is the role's process count, NumNodes × NumWorkersPerNode.
func (r RoleConfig) Size() int { return r.NumNodes * r.NumWorkersPerNode }

// ColocateConfig joins roles into the same processes (OpenRLHF's
// --colocate_* flags). A role that the run does not need is left out of
// its co-location.
type ColocateConfig struct {
	ActorRef     bool // --train.colocate_actor_ref: the actor and the reference share processes
	CriticReward bool // --train.colocate_critic_reward: the critic and the reward model share processes
	All          bool // --train.colocate_all: every model role and the rollout engines share processes
}

// Config is the placement of a run: the launcher, each role's layout and
// the co-locations. Start from DefaultConfig.
type Config struct {
	// Launcher starts the processes; inproc (the default) keeps every
	// role in the driver's process and ignores the rest of the Config
	// except that the layouts must be the default.
	Launcher Launcher
	Actor    RoleConfig
	Ref      RoleConfig
	Critic   RoleConfig
	Reward   RoleConfig
	// RolloutEngines is the number of rollout engine processes
	// (--rollout.num_engines); default 1.
	RolloutEngines int
	Colocate       ColocateConfig
}

// DefaultConfig is everything in the driver, one worker per role when a
// launcher places them.
func DefaultConfig() Config {
	one := RoleConfig{NumNodes: 1, NumWorkersPerNode: 1}
	return Config{Launcher: Inproc, Actor: one, Ref: one, Critic: one, Reward: one, RolloutEngines: 1}
}

// RegisterFlags binds the placement flags, with OpenRLHF's names:
// --launcher, --{actor,ref,critic,reward}.num_nodes and
// .num_workers_per_node, --rollout.num_engines and --train.colocate_*.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Launcher, "launcher", "what starts the roles' processes: inproc (all in this process), local (worker processes on this host), slurm (every srun task runs this command; rank 0 drives) or k8s (a JobSet from gorlhf launch k8s)")
	for _, r := range []struct {
		role Role
		cfg  *RoleConfig
	}{{Actor, &c.Actor}, {Reference, &c.Ref}, {Critic, &c.Critic}, {Reward, &c.Reward}} {
		fs.IntVar(&r.cfg.NumNodes, string(r.role)+".num_nodes", r.cfg.NumNodes, "nodes the "+string(r.role)+" spans (not with --launcher inproc)")
		usage := string(r.role) + " worker processes per node (not with --launcher inproc)"
		if r.role == Actor || r.role == Critic {
			usage += "; several processes train the " + string(r.role) + " data-parallel, sharded by --ds.zero_stage"
		}
		fs.IntVar(&r.cfg.NumWorkersPerNode, string(r.role)+".num_workers_per_node", r.cfg.NumWorkersPerNode, usage)
	}
	fs.IntVar(&c.RolloutEngines, "rollout.num_engines", c.RolloutEngines, "rollout engine processes (not with --launcher inproc)")
	fs.BoolVar(&c.Colocate.ActorRef, "train.colocate_actor_ref", c.Colocate.ActorRef, "actor and reference in the same processes (same layout)")
	fs.BoolVar(&c.Colocate.CriticReward, "train.colocate_critic_reward", c.Colocate.CriticReward, "critic and reward model in the same processes (same layout)")
	fs.BoolVar(&c.Colocate.All, "train.colocate_all", c.Colocate.All, "every model and the rollout engines in the same processes (same layout; engines = actor processes)")
}

// Validate checks the launcher and that every count is at least 1; with
// the inproc launcher the layouts must be the defaults (one process can
// hold one copy of each role).
func (c Config) Validate() error {
	var errs []error
	var l Launcher
	if err := l.Set(string(c.Launcher)); err != nil {
		errs = append(errs, fmt.Errorf("launch: --launcher: %w", err))
	}
	for _, r := range c.layouts() {
		errs = append(errs, positive(string(r.role)+".num_nodes", r.cfg.NumNodes),
			positive(string(r.role)+".num_workers_per_node", r.cfg.NumWorkersPerNode))
	}
	errs = append(errs, positive("rollout.num_engines", c.RolloutEngines))
	if c.Launcher == Inproc {
		for _, r := range c.layouts() {
			if r.cfg.Size() > 1 {
				errs = append(errs, fmt.Errorf("launch: --%s.num_nodes=%d --%s.num_workers_per_node=%d needs several processes: use --launcher local, slurm or k8s",
					r.role, r.cfg.NumNodes, r.role, r.cfg.NumWorkersPerNode))
			}
		}
		if c.RolloutEngines > 1 {
			errs = append(errs, fmt.Errorf("launch: --rollout.num_engines=%d needs several processes: use --launcher local, slurm or k8s", c.RolloutEngines))
		}
	}
	return errors.Join(errs...)
}

// roleLayout pairs a model role with its layout.
type roleLayout struct {
	role Role
	cfg  RoleConfig
}

// layouts lists the model roles' layouts in placement order.
func (c Config) layouts() []roleLayout {
	return []roleLayout{{Actor, c.Actor}, {Reference, c.Ref}, {Critic, c.Critic}, {Reward, c.Reward}}
}

// layout returns a role's layout; the rollout engines sit one per
// worker on one node.
func (c Config) layout(r Role) RoleConfig {
	for _, l := range c.layouts() {
		if l.role == r {
			return l.cfg
		}
	}
	return RoleConfig{NumNodes: 1, NumWorkersPerNode: c.RolloutEngines}
}

func positive(flagName string, v int) error {
	if v < 1 {
		return fmt.Errorf("launch: --%s must be at least 1, got %d", flagName, v)
	}
	return nil
}
