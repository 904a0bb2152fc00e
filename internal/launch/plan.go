package launch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// DriverGroup is the name of the placement group of rank 0.
const DriverGroup = "driver"

// Plan is where every process of a run goes: placement groups of
// processes (ranks), each hosting one or more roles. It depends only on
// the Config and the Needs, so every process of a run computes the same
// Plan from the same flags and finds its own group from its rank.
type Plan struct {
	Launcher  Launcher
	WorldSize int // processes, the driver included
	// Groups[0] is the driver (rank 0), then one group per set of
	// co-located roles, in placement order (actor, ref, critic, reward,
	// rollout); ranks are numbered consecutively through them.
	Groups []Group
}

// Group is a set of processes that host the same roles.
type Group struct {
	// Name is the roles joined by "-" (actor-ref), "all" for
	// --train.colocate_all, or "driver"; a valid DNS label.
	Name string
	// Roles the group's processes host. The driver hosts every role
	// with the inproc launcher and none otherwise (it still runs the
	// loop and any rule or remote reward).
	Roles          []Role
	NumNodes       int
	WorkersPerNode int
	Ranks          []Rank // NumNodes × WorkersPerNode of them, node-major
}

// Rank is one process of a group.
type Rank struct {
	Global int // the run-wide rank (SLURM_PROCID under Slurm)
	Node   int // node index within the group
	Local  int // worker index within the node
}

// NewPlan places the roles a run needs according to cfg: with the inproc
// launcher all of them in the driver; otherwise each role in its own
// processes unless a co-location joins them. Co-located roles must have
// the same layout, and with --train.colocate_all the rollout engines must
// number as many as the actor's processes (one engine beside each).
func NewPlan(cfg Config, needs Needs) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{Launcher: cfg.Launcher}
	if cfg.Launcher == Inproc {
		p.add(DriverGroup, needs.roles(), RoleConfig{NumNodes: 1, NumWorkersPerNode: 1})
		return p, nil
	}
	p.add(DriverGroup, nil, RoleConfig{NumNodes: 1, NumWorkersPerNode: 1})
	sets, err := colocated(cfg, needs.roles())
	if err != nil {
		return Plan{}, err
	}
	for _, s := range sets {
		p.add(s.name, s.roles, cfg.layout(s.roles[0]))
	}
	return p, nil
}

// roleSet is roles that share processes.
type roleSet struct {
	name  string
	roles []Role
}

// colocated partitions the needed roles into the sets that share
// processes and checks that each set's layouts agree.
func colocated(cfg Config, needed []Role) ([]roleSet, error) {
	join := map[Role]Role{} // role → the role whose processes it joins
	switch {
	case cfg.Colocate.All:
		for _, r := range needed[1:] {
			join[r] = Actor
		}
	default:
		if cfg.Colocate.ActorRef {
			join[Reference] = Actor
		}
		if cfg.Colocate.CriticReward && slices.Contains(needed, Critic) {
			join[Reward] = Critic
		}
	}
	var sets []roleSet
	index := map[Role]int{}
	var errs []error
	for _, r := range needed {
		host, ok := join[r]
		if i, joined := index[host]; ok && joined {
			errs = append(errs, sameLayout(cfg, host, r))
			sets[i].roles = append(sets[i].roles, r)
			index[r] = i
			continue
		}
		index[r] = len(sets)
		sets = append(sets, roleSet{roles: []Role{r}})
	}
	for i := range sets {
		sets[i].name = groupName(sets[i].roles, cfg.Colocate.All)
	}
	return sets, errors.Join(errs...)
}

func groupName(roles []Role, all bool) string {
	if all {
		return "all"
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, "-")
}

// sameLayout checks that role r may share host's processes.
func sameLayout(cfg Config, host, r Role) error {
	h, l := cfg.layout(host), cfg.layout(r)
	if r == Rollout {
		if cfg.RolloutEngines != h.Size() {
			return fmt.Errorf("launch: --train.colocate_all puts one rollout engine beside each actor process: --rollout.num_engines=%d must equal --actor.num_nodes × --actor.num_workers_per_node = %d",
				cfg.RolloutEngines, h.Size())
		}
		return nil
	}
	if h != l {
		return fmt.Errorf("launch: %s puts %s and %s in the same processes: their layouts differ (--%s.num_nodes=%d --%s.num_workers_per_node=%d vs --%s.num_nodes=%d --%s.num_workers_per_node=%d)",
			colocateFlag(cfg, r), host, r, host, h.NumNodes, host, h.NumWorkersPerNode, r, l.NumNodes, r, l.NumWorkersPerNode)
	}
	return nil
}

func colocateFlag(cfg Config, r Role) string {
	switch {
	case cfg.Colocate.All:
		return "--train.colocate_all"
	case r == Reference:
		return "--train.colocate_actor_ref"
	}
	return "--train.colocate_critic_reward"
}

// add appends a group with the next free ranks.
func (p *Plan) add(name string, roles []Role, l RoleConfig) {
	g := Group{Name: name, Roles: roles, NumNodes: l.NumNodes, WorkersPerNode: l.NumWorkersPerNode}
	for n := range l.NumNodes {
		for w := range l.NumWorkersPerNode {
			g.Ranks = append(g.Ranks, Rank{Global: p.WorldSize, Node: n, Local: w})
			p.WorldSize++
		}
	}
	p.Groups = append(p.Groups, g)
}

// Place returns the group and the place of a global rank.
func (p Plan) Place(rank int) (Group, Rank, error) {
	for _, g := range p.Groups {
		if n := len(g.Ranks); n > 0 && rank >= g.Ranks[0].Global && rank < g.Ranks[0].Global+n {
			return g, g.Ranks[rank-g.Ranks[0].Global], nil
		}
	}
	return Group{}, Rank{}, fmt.Errorf("launch: rank %d is outside the plan's %d processes", rank, p.WorldSize)
}

// Assign finds this process's group from its identity, after checking
// that the launcher started as many processes as the plan has (under
// Slurm: srun --ntasks equals the world size, and SLURM_PROCID is the
// rank).
func (p Plan) Assign(id Identity) (Group, Rank, error) {
	if id.WorldSize != p.WorldSize {
		return Group{}, Rank{}, fmt.Errorf("launch: the launcher started %d processes (%s) but the placement needs %d (under Slurm: srun --ntasks=%d)",
			id.WorldSize, id.From["world_size"], p.WorldSize, p.WorldSize)
	}
	return p.Place(id.Rank)
}

// Host returns the group that hosts role r, if the plan places it.
func (p Plan) Host(r Role) (Group, bool) {
	for _, g := range p.Groups {
		if slices.Contains(g.Roles, r) {
			return g, true
		}
	}
	return Group{}, false
}

// String is a table of the groups, e.g.
//
//	launcher slurm, 4 processes
//	group      roles       ranks  nodes × workers
//	driver     -           0      1 × 1
//	actor-ref  actor, ref  1-2    1 × 2
//	rollout    rollout     3      1 × 1
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "launcher %s, %d processes\n", p.Launcher, p.WorldSize)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "group\troles\tranks\tnodes × workers")
	for _, g := range p.Groups {
		roles := "-"
		if len(g.Roles) > 0 {
			names := make([]string, len(g.Roles))
			for i, r := range g.Roles {
				names[i] = string(r)
			}
			roles = strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d × %d\n", g.Name, roles, rankRange(g.Ranks), g.NumNodes, g.WorkersPerNode)
	}
	w.Flush()
	return b.String()
}

func rankRange(rs []Rank) string {
	if len(rs) == 1 {
		return strconv.Itoa(rs[0].Global)
	}
	return fmt.Sprintf("%d-%d", rs[0].Global, rs[len(rs)-1].Global)
}
