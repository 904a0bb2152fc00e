package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/transfer"
)

// Builder builds, in this process, the roles want selects (inproc.BuildSome
// over the run's spec and the loaded actor bundle).
type Builder func(want inproc.Want) (*inproc.Roles, error)

// Options place a run's roles from the driver's side.
type Options struct {
	Plan  launch.Plan
	Build Builder
	// Secret is the run's shared secret (remote.NewSecret for a local
	// launch; the launcher's GORLHF_RUN_SECRET otherwise).
	Secret string
	// Version and Digest are this build's version and the run's config
	// digest: a worker that differs in either is refused.
	Version, Digest string
	// Listen is where the driver's rendezvous listens, host:port.
	Listen string
	// Local starts the workers on this host (--launcher local); nil means
	// another launcher (Slurm, Kubernetes) starts them.
	Local *Local
	// JoinTimeout bounds the wait for every worker to register and
	// answer; default 5 min (workers load their models first).
	JoinTimeout time.Duration
	// Logger reports progress; nil is silent.
	Logger *slog.Logger
}

// Local is the local launcher: one worker process per rank on this host.
type Local struct {
	Exe    string   // the gorlhf binary
	Prefix []string // arguments before the worker subcommand (none for gorlhf itself)
	// Args are a worker's arguments after `worker --rank R --world_size N
	// --driver_addr RENDEZVOUS`.
	Args   func(rank int) []string
	Env    []string // extra environment (the run secret)
	LogDir string   // worker-<rank>.log files
}

// Placed is a run's roles wherever the plan put them.
type Placed struct {
	Set role.Set
	// Overlap says the model roles live in other processes: the driver
	// should ask them concurrently (ppo.Runtime.Overlap).
	Overlap bool
	// MaxPositions is the rollout engine's position limit when the engine
	// runs in this process (0 otherwise).
	MaxPositions int
	// Sync moves the actor's weights to the rollout engine: straight from
	// the actor's worker to the engine's when both are remote.
	Sync func(ctx context.Context, actor role.Actor, rollout role.Rollout, version int64) error

	local   *inproc.Roles
	conns   []*remote.Conn
	plane   *plane
	rdv     *cluster.Rendezvous
	server  *http.Server
	sup     *cluster.Supervisor
	cancel  context.CancelCauseFunc
	ctx     context.Context
	once    sync.Once
	failure chan error
}

// Start places the roles: with the inproc launcher it builds them all
// here; otherwise it opens the rendezvous, starts the workers (local
// launcher) or waits for the launcher's, and dials each. The returned
// context is cancelled, with the failure as its cause, when a worker dies
// or loses the driver; run the training under it.
func Start(ctx context.Context, o Options) (*Placed, context.Context, error) {
	if o.Build == nil {
		return nil, nil, errors.New("placement: no role builder")
	}
	p := &Placed{failure: make(chan error, 1)}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	if o.Plan.Launcher == launch.Inproc || o.Plan.Launcher == "" {
		r, err := o.Build(inproc.AllRoles())
		if err != nil {
			return nil, nil, err
		}
		p.local, p.Set, p.MaxPositions = r, r.Set, r.MaxPositions()
		return p, p.ctx, nil
	}
	if err := p.startWorkers(o); err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, p.ctx, nil
}

// startWorkers is Start for the launchers that run workers.
func (p *Placed) startWorkers(o Options) error {
	if err := checkPlan(o.Plan); err != nil {
		return err
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = 5 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := p.openRendezvous(o)
	if err != nil {
		return err
	}
	if o.Local != nil {
		if p.sup, err = startLocal(p.ctx, o, ln.Addr().String()); err != nil {
			return err
		}
	}
	go p.monitor()
	log.Info("waiting for workers", "launcher", o.Plan.Launcher, "workers", o.Plan.WorldSize-1, "rendezvous", ln.Addr().String())
	members, err := p.waitMembers(o.JoinTimeout)
	if err != nil {
		return err
	}
	if p.plane, err = newPlane(o.Secret, ""); err != nil {
		return err
	}
	if err := p.dial(o, members); err != nil {
		return err
	}
	// Rule graders and remote reward servers are not placed: the driver
	// scores with them itself.
	w := want(o.Plan.Groups[0].Roles)
	if _, placed := o.Plan.Host(launch.Reward); !placed {
		w.Reward = true
	}
	if p.local, err = o.Build(w); err != nil {
		return err
	}
	if p.local.Reward != nil {
		p.Set.Reward = p.local.Reward
	}
	p.Overlap, p.Sync = true, syncWeights
	log.Info("roles placed", "plan", o.Plan.String())
	return nil
}

// openRendezvous listens on o.Listen and serves the rendezvous there.
func (p *Placed) openRendezvous(o Options) (net.Listener, error) {
	var ranks []int
	for _, g := range o.Plan.Groups[1:] {
		for _, r := range g.Ranks {
			ranks = append(ranks, r.Global)
		}
	}
	rdv, err := cluster.NewRendezvous(cluster.RendezvousConfig{Secret: o.Secret, Version: o.Version, Digest: o.Digest, Ranks: ranks,
		Assignment: func(int) (json.RawMessage, error) { return json.RawMessage(`{}`), nil }})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("placement: driver rendezvous on %s: %w", o.Listen, err)
	}
	p.rdv, p.server = rdv, &http.Server{Handler: rdv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go p.server.Serve(ln)
	return ln, nil
}

// startLocal starts one worker process per worker rank.
func startLocal(ctx context.Context, o Options, rendezvous string) (*cluster.Supervisor, error) {
	var procs []cluster.Proc
	for _, g := range o.Plan.Groups[1:] {
		for _, r := range g.Ranks {
			args := append(slices.Clone(o.Local.Prefix), "worker", "--rank", fmt.Sprint(r.Global), "--world_size", fmt.Sprint(o.Plan.WorldSize), "--driver_addr", rendezvous)
			args = append(args, o.Local.Args(r.Global)...)
			procs = append(procs, cluster.Proc{Rank: r.Global, Roles: g.Name, Args: args, Env: o.Local.Env})
		}
	}
	return cluster.Start(ctx, o.Local.Exe, procs, o.Local.LogDir)
}

// monitor turns the first dead worker into the run's failure.
func (p *Placed) monitor() {
	var exited <-chan cluster.Exit
	if p.sup != nil {
		exited = p.sup.Exited()
	}
	var err error
	select {
	case e := <-exited:
		err = e
	case l := <-p.rdv.Lost():
		err = l
		if exited != nil { // the process exit, if it comes, says more
			select {
			case e := <-exited:
				err = e
			case <-time.After(2 * time.Second):
			}
		}
	case <-p.ctx.Done():
		return
	}
	p.fail(err)
}

func (p *Placed) fail(err error) {
	p.once.Do(func() {
		p.failure <- err
		p.cancel(err)
	})
}

// waitMembers waits for every worker to register, or for the first to die.
func (p *Placed) waitMembers(timeout time.Duration) ([]cluster.Member, error) {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	ms, err := p.rdv.Wait(ctx)
	if err != nil {
		if cause := context.Cause(p.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return nil, cause
		}
		return nil, err
	}
	return ms, nil
}

// dial connects to every worker and gathers its roles into the Set: a
// group of one process serves its roles as they are, the ranks of a
// data-parallel group behind the fan-out of package role/group.
func (p *Placed) dial(o Options, members []cluster.Member) error {
	byRank := map[int]cluster.Member{}
	for _, m := range members {
		byRank[m.Rank] = m
	}
	for _, g := range o.Plan.Groups[1:] {
		c := &rankClients{size: len(g.Ranks)}
		var h remote.Hosted
		for _, rk := range g.Ranks {
			m := byRank[rk.Global]
			cfg := remote.DefaultConfig()
			cfg.Addr, cfg.Roles, cfg.Secret = m.Addr, remoteRoles(g.Roles), remote.Secret(o.Secret)
			cfg.Version, cfg.ConfigDigest, cfg.Weights, cfg.Logger = o.Version, o.Digest, p.plane, o.Logger
			conn, err := remote.Dial(p.ctx, cfg)
			if err != nil {
				return fmt.Errorf("placement: group %s (rank %d on %s): %w", g.Name, m.Rank, m.Host, err)
			}
			p.conns = append(p.conns, conn)
			h = conn.Hosted()
			c.add(h, m)
		}
		if dataParallel(g) {
			if err := p.fanOut(g, c); err != nil {
				return err
			}
			continue
		}
		for _, r := range g.Roles {
			switch r {
			case launch.Actor:
				p.Set.Actor = h.Actor
			case launch.Reference:
				p.Set.Reference = h.Reference
			case launch.Critic:
				p.Set.Critic = h.Critic
			case launch.Reward:
				p.Set.Reward = h.Reward
			case launch.Rollout:
				p.Set.Rollout = h.Rollout
			}
		}
	}
	return nil
}

// Explain returns the failure behind err: when a worker died, the
// training's own error is a broken call; the worker's exit says why. It
// waits up to 3 s for that report.
func (p *Placed) Explain(err error) error {
	if err == nil || p.rdv == nil {
		return err
	}
	select {
	case f := <-p.failure:
		p.failure <- f
		return f
	case <-time.After(3 * time.Second):
		return err
	}
}

// Close ends the run: workers are told to exit (and, for the local
// launcher, stopped by PID if they do not within 10 s), connections and
// the in-process roles are closed.
func (p *Placed) Close() error {
	p.once.Do(func() { p.cancel(context.Canceled) })
	if p.rdv != nil {
		p.rdv.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	if p.sup != nil {
		if !p.sup.Wait(10 * time.Second) {
			p.sup.Stop(2 * time.Second)
		}
		for _, pid := range p.sup.PIDs() { // a killed actor worker could not remove its snapshot
			_, _ = transfer.RemoveSnapshots(shmDir, pid)
		}
	}
	if p.server != nil {
		// Shutdown, not Close: the watches write their "bye" before
		// their connections go (under slurm and k8s nothing else tells
		// a worker the run ended well).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.server.Shutdown(ctx)
		cancel()
		p.server.Close()
	}
	if p.plane != nil {
		p.plane.Close()
	}
	if p.local != nil {
		return p.local.Close()
	}
	return nil
}

// want maps placed roles to the in-process builder's selection.
func want(roles []launch.Role) inproc.Want {
	var w inproc.Want
	for _, r := range roles {
		switch r {
		case launch.Actor:
			w.Actor = true
		case launch.Reference:
			w.Reference = true
		case launch.Critic:
			w.Critic = true
		case launch.Reward:
			w.Reward = true
		case launch.Rollout:
			w.Rollout = true
		}
	}
	return w
}

// remoteRoles maps placed roles to the transport's names.
func remoteRoles(roles []launch.Role) []remote.Role {
	names := map[launch.Role]remote.Role{launch.Actor: remote.RoleActor, launch.Reference: remote.RoleReference,
		launch.Critic: remote.RoleCritic, launch.Reward: remote.RoleReward, launch.Rollout: remote.RoleRollout}
	out := make([]remote.Role, len(roles))
	for i, r := range roles {
		out[i] = names[r]
	}
	return out
}
