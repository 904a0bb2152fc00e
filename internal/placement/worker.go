package placement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/role/remote"
)

// WorkerOptions run one worker process: the roles of its placement group.
type WorkerOptions struct {
	Identity launch.Identity // its rank and the driver's address
	Plan     launch.Plan     // the run's plan (the same flags give the same plan everywhere)
	Build    Builder
	Secret   string
	// Version and Digest must equal the driver's.
	Version, Digest string
	// Host is the interface the role server and the weights plane listen
	// on (port chosen by the system); default 127.0.0.1.
	Host string
	// JoinTimeout bounds how long the worker tries to reach the driver;
	// default 60 s.
	JoinTimeout time.Duration
	Logger      *slog.Logger
}

// Serve builds the worker's roles, serves them, registers with the
// driver and runs until the driver ends the run (nil) or is gone (an
// error wrapping cluster.ErrDriverGone). It never outlives its driver.
func Serve(ctx context.Context, o WorkerOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	g, rk, err := o.Plan.Assign(o.Identity)
	if err != nil {
		return err
	}
	if g.Name == launch.DriverGroup {
		return fmt.Errorf("placement: rank %d is the driver, not a worker", o.Identity.Rank)
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	w := want(g.Roles)
	if dataParallel(g) {
		if o.JoinTimeout <= 0 {
			o.JoinTimeout = 60 * time.Second
		}
		comm, err := joinGroup(ctx, o, g, rk, host)
		if err != nil {
			return err
		}
		defer comm.Close()
		log.Info("joined the data-parallel group", "rank", rk.Global, "group", g.Name, "group_rank", comm.Rank(), "group_size", comm.Size())
		if w.Actor {
			w.ActorComm = comm
		}
		if w.Critic {
			w.CriticComm = comm
		}
	}
	log.Info("building roles", "rank", rk.Global, "group", g.Name, "roles", g.Roles)
	roles, err := o.Build(w)
	if err != nil {
		return fmt.Errorf("placement: worker rank %d (%s): %w", rk.Global, g.Name, err)
	}
	defer roles.Close()
	logMemory(log, rk.Global, roles)
	publishes := slices.Contains(g.Roles, launch.Actor)
	fetches := slices.Contains(g.Roles, launch.Rollout)
	var pl *plane
	if publishes || fetches {
		listen := ""
		if publishes {
			listen = net.JoinHostPort(host, "0")
		}
		if pl, err = newPlane(o.Secret, listen); err != nil {
			return err
		}
		defer pl.Close()
	}
	sc := remote.ServerConfig{Addr: net.JoinHostPort(host, "0"), Secret: remote.Secret(o.Secret), Version: o.Version,
		ConfigDigest: o.Digest, Rank: rk.Global, Logger: o.Logger}
	if pl != nil {
		sc.Weights = pl
	}
	srv, err := remote.NewServer(sc, remote.Hosted{Actor: roles.Actor, Critic: roles.Critic, Reference: roles.Reference,
		Reward: roles.Reward, Rollout: roles.Rollout})
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer srv.Close()
	name, _ := os.Hostname()
	me := cluster.Member{Rank: rk.Global, Host: name, Addr: srv.Addr(), PID: os.Getpid(), Version: o.Version, Digest: o.Digest}
	jc := cluster.JoinConfig{Driver: o.Identity.DriverAddr(), Secret: o.Secret, Timeout: o.JoinTimeout}
	if _, err := cluster.Join(ctx, jc, me); err != nil {
		return err
	}
	log.Info("registered", "rank", rk.Global, "driver", jc.Driver, "serving", srv.Addr())
	watched := make(chan error, 1)
	go func() { watched <- cluster.Watch(ctx, jc, rk.Global) }()
	select {
	case err := <-watched:
		if err == nil {
			log.Info("the driver ended the run", "rank", rk.Global)
		}
		return err
	case err := <-served:
		return fmt.Errorf("placement: worker rank %d: role server stopped: %w", rk.Global, err)
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return nil
		}
		return context.Cause(ctx)
	}
}
