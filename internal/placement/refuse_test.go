package placement

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/launch"
)

// TestStart_RefusesWorkers: a worker started with another config digest,
// or with another secret, is refused at registration (its Serve returns
// cluster.ErrRefused at once), and the driver gives up after its join
// timeout naming the ranks that never registered.
func TestStart_RefusesWorkers(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	if plan.WorldSize != 3 {
		t.Fatalf("plan of %d processes, want 3:\n%s", plan.WorldSize, plan)
	}
	o := driverOptions(plan)
	o.JoinTimeout = 3 * time.Second
	port, done := startDriver(t, o)

	digest := workerOptions(plan, 1, port)
	digest.Digest = "run:other"
	secret := workerOptions(plan, 2, port)
	secret.Secret = "a-wrong-secret-0123456789"
	for _, c := range []struct {
		name string
		o    WorkerOptions
		want string
	}{{"digest", digest, "config digest mismatch"}, {"secret", secret, "wrong run secret"}} {
		err := serve(t, c.o).wait(t, 30*time.Second)
		if !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("worker with another %s: Serve returned %v, want %v naming %q", c.name, err, cluster.ErrRefused, c.want)
		}
	}
	s := awaitStart(t, done)
	if s.err == nil || !strings.Contains(s.err.Error(), "ranks 1, 2 never registered") {
		t.Fatalf("Start with refused workers: %v, want ranks 1, 2 never registered", s.err)
	}
}

// TestStart_RefusesPlans: a group on several ranks that is not a
// data-parallel actor (with its reference) or critic — several rollout
// engines, a reward model or a lone reference on several ranks — is
// refused with its name before anything listens, while data-parallel
// actor, actor-ref and critic groups pass; a plan whose world size
// differs from the worker's identity is refused by the worker; the
// driver's rank is no worker.
func TestStart_RefusesPlans(t *testing.T) {
	needs := launch.Needs{Critic: true, Reference: true, Reward: true}
	for _, c := range []struct {
		name  string
		edit  func(*launch.Config)
		group string
	}{
		{"rollout", func(c *launch.Config) { c.RolloutEngines = 2 }, "group rollout has 2 processes: several rollout engines"},
		{"reward", func(c *launch.Config) { c.Reward.NumNodes = 2 }, "group reward has 2 processes: a reward model on several ranks"},
		{"ref", func(c *launch.Config) { c.Ref.NumWorkersPerNode = 2 }, "group ref has 2 processes: a reference model on several ranks is only supported co-located"},
		{"critic-reward", func(c *launch.Config) {
			c.Colocate.CriticReward, c.Critic.NumWorkersPerNode, c.Reward.NumWorkersPerNode = true, 2, 2
		}, "group critic-reward has 2 processes: a reward model"},
		{"all", func(c *launch.Config) {
			c.Colocate.All, c.Actor.NumWorkersPerNode, c.Ref.NumWorkersPerNode, c.Critic.NumWorkersPerNode, c.Reward.NumWorkersPerNode, c.RolloutEngines = true, 2, 2, 2, 2, 2
		}, "group all has 2 processes: several rollout engines"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := launch.DefaultConfig()
			c.edit(&cfg)
			plan := slurmPlan(t, cfg, needs)
			if err := checkPlan(plan); err == nil || !strings.Contains(err.Error(), c.group) {
				t.Fatalf("checkPlan: %v, want %q", err, c.group)
			}
			o := driverOptions(plan)
			o.Listen = "127.0.0.1:1" // never reached: the plan is refused first
			p, ctx, err := Start(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.group) || p != nil || ctx != nil {
				t.Fatalf("Start: %v, want %q and nothing placed", err, c.group)
			}
		})
	}
	for _, edit := range []func(*launch.Config){
		func(c *launch.Config) { c.Actor.NumWorkersPerNode = 2 },
		func(c *launch.Config) { c.Critic.NumNodes = 3 },
		func(c *launch.Config) {
			c.Colocate.ActorRef, c.Actor.NumWorkersPerNode, c.Ref.NumWorkersPerNode = true, 2, 2
		},
	} {
		cfg := launch.DefaultConfig()
		edit(&cfg)
		if err := checkPlan(slurmPlan(t, cfg, needs)); err != nil {
			t.Errorf("a data-parallel group is refused: %v", err)
		}
	}
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	if err := checkPlan(plan); err != nil {
		t.Fatal(err)
	}
	o := workerOptions(plan, 1, 1)
	o.Identity.WorldSize = 4
	if err := Serve(context.Background(), o); err == nil || !strings.Contains(err.Error(), "needs 3") {
		t.Fatalf("Serve with world size 4 for a plan of 3: %v", err)
	}
	if err := Serve(context.Background(), workerOptions(plan, 0, 1)); err == nil || !strings.Contains(err.Error(), "is the driver") {
		t.Fatalf("Serve as rank 0: %v", err)
	}
	if _, _, err := Start(context.Background(), Options{Plan: plan}); err == nil {
		t.Fatal("Start without a builder")
	}
}
