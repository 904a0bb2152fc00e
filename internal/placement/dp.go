package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/group"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Data-parallel groups: a placement group of N > 1 processes that hosts
// the actor (with the reference, when they are co-located) or the
// critic. Each process builds a replica and trains it as one rank of a
// collective group (a zero.Engine at --ds.zero_stage); the driver dials
// every rank and drives them through the fan-out of package role/group.
//
// The group's bootstrap: its first rank listens on a fresh port for the
// collective rendezvous and posts the address on the driver's board
// (cluster.Post, key "collective/<group>"); the other ranks look it up
// there (cluster.Lookup, waiting until it is posted) and dial it. Every
// rank reaches the driver anyway, under every launcher, so nothing else
// needs to know where the group's first rank runs; the run secret
// authenticates both the board and the collective handshakes.

// checkPlan refuses what this release cannot run yet: a role on several
// ranks other than a data-parallel actor (with its reference) or critic.
func checkPlan(plan launch.Plan) error {
	var errs []error
	for _, g := range plan.Groups[1:] {
		if len(g.Ranks) == 1 {
			continue
		}
		switch {
		case slices.Contains(g.Roles, launch.Rollout):
			errs = append(errs, fmt.Errorf("placement: group %s has %d processes: several rollout engines (--rollout.num_engines > 1, or --train.colocate_all with a data-parallel actor) are not supported yet", g.Name, len(g.Ranks)))
		case slices.Contains(g.Roles, launch.Reward):
			errs = append(errs, fmt.Errorf("placement: group %s has %d processes: a reward model on several ranks (--reward.num_nodes × --reward.num_workers_per_node > 1, or --train.colocate_critic_reward with a data-parallel critic) is not supported yet", g.Name, len(g.Ranks)))
		case !slices.Contains(g.Roles, launch.Actor) && !slices.Contains(g.Roles, launch.Critic):
			errs = append(errs, fmt.Errorf("placement: group %s has %d processes: a reference model on several ranks is only supported co-located with the data-parallel actor (--train.colocate_actor_ref)", g.Name, len(g.Ranks)))
		}
	}
	return errors.Join(errs...)
}

// dataParallel reports whether group g trains its role on several ranks.
func dataParallel(g launch.Group) bool { return len(g.Ranks) > 1 }

// boardKey is where group g's first rank posts its collective address.
func boardKey(g launch.Group) string { return "collective/" + g.Name }

// joinGroup makes this worker rank rk of its data-parallel group g: the
// group's first rank listens on host and posts the address; the others
// look it up; all join the collective group.
func joinGroup(ctx context.Context, o WorkerOptions, g launch.Group, rk launch.Rank, host string) (collective.Comm, error) {
	idx := rk.Global - g.Ranks[0].Global
	jc := cluster.JoinConfig{Driver: o.Identity.DriverAddr(), Secret: o.Secret, Timeout: o.JoinTimeout}
	cfg := collective.Config{Rank: idx, Size: len(g.Ranks), Secret: o.Secret, Timeout: max(o.JoinTimeout, time.Minute)}
	if idx == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("placement: worker rank %d (%s rank 0): collective rendezvous: %w", rk.Global, g.Name, err)
		}
		cfg.Listener, cfg.Addr = ln, ln.Addr().String()
		if err := cluster.Post(ctx, jc, boardKey(g), cfg.Addr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("placement: worker rank %d (%s rank 0): %w", rk.Global, g.Name, err)
		}
	} else {
		addr, err := cluster.Lookup(ctx, jc, boardKey(g))
		if err != nil {
			return nil, fmt.Errorf("placement: worker rank %d (%s rank %d): the group's first rank (worker rank %d) never posted its address: %w",
				rk.Global, g.Name, idx, g.Ranks[0].Global, err)
		}
		cfg.Addr = addr
	}
	comm, err := collective.Connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("placement: worker rank %d (%s rank %d of %d): joining the group: %w", rk.Global, g.Name, idx, len(g.Ranks), err)
	}
	return comm, nil
}

// logMemory reports the training state a data-parallel actor or critic
// rank holds (zero.Memory: bytes of parameters, gradients, AdamW moments
// and scratch).
func logMemory(log *slog.Logger, rank int, roles *inproc.Roles) {
	for _, r := range []struct {
		name string
		opt  *train.Optimizer
	}{{"actor", optimizerOf(roles.Actor)}, {"critic", optimizerOf(roles.Critic)}} {
		if r.opt == nil {
			continue
		}
		if m, ok := r.opt.Memory(); ok {
			log.Info("data parallel", "rank", rank, "role", r.name, "group_rank", r.opt.Rank(), "group_size", r.opt.Size(),
				"param_bytes", m.Params, "grad_bytes", m.Grads, "optim_bytes", m.Optim, "scratch_bytes", m.Scratch)
		}
	}
}

// optimizerOf is an in-process trainable role's optimizer (nil for
// anything else).
func optimizerOf(r any) *train.Optimizer {
	if t, ok := r.(interface{ Optimizer() *train.Optimizer }); ok {
		return t.Optimizer()
	}
	return nil
}

// rankClients are the roles of every rank of one placement group.
type rankClients struct {
	size       int // the group's ranks
	actors     []role.Actor
	critics    []role.Critic
	references []role.Reference
	hosts      []string // "rank R on HOST" per rank, for errors
}

func (c *rankClients) add(h remote.Hosted, m cluster.Member) {
	if h.Actor != nil {
		c.actors = append(c.actors, h.Actor)
	}
	if h.Critic != nil {
		c.critics = append(c.critics, h.Critic)
	}
	if h.Reference != nil {
		c.references = append(c.references, h.Reference)
	}
	c.hosts = append(c.hosts, fmt.Sprintf("rank %d of %d (worker rank %d on %s)", len(c.hosts), c.size, m.Rank, m.Host))
}

// fanOut puts the fan-out of package group in front of a data-parallel
// group's ranks, in the Set.
func (p *Placed) fanOut(g launch.Group, c *rankClients) error {
	where := group.Where(func(r int) string { return c.hosts[r] })
	var err error
	if len(c.actors) > 0 {
		var a *group.Actor
		if a, err = group.NewActor(c.actors, where); err != nil {
			return err
		}
		p.Set.Actor = a
	}
	if len(c.critics) > 0 {
		if p.Set.Critic, err = group.NewCritic(c.critics, where); err != nil {
			return err
		}
	}
	if len(c.references) > 0 {
		if p.Set.Reference, err = group.NewReference(c.references, where); err != nil {
			return err
		}
	}
	return nil
}

// syncWeights moves the actor's weights to the rollout engine: from a
// data-parallel actor's rank 0 (straight to the engine's worker) while
// every other rank takes part in gathering them (and publishes none);
// otherwise as remote.SyncWeights does.
func syncWeights(ctx context.Context, actor role.Actor, rollout role.Rollout, version int64) error {
	g, ok := actor.(*group.Actor)
	if !ok {
		return remote.SyncWeights(ctx, actor, rollout, version)
	}
	return g.Publish(ctx, func(ctx context.Context, rank int, a role.Actor) error {
		if rank == 0 {
			return remote.SyncWeights(ctx, a, rollout, version)
		}
		return remote.Publish(ctx, a, version)
	})
}
