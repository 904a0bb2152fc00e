package placement

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/group"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// dpSpec is testSpec at ZeRO stage 3, clipping as trainSteps asks.
func dpSpec() role.Spec {
	s := testSpec()
	s.ZeroStage, s.Actor.MaxNorm, s.Critic.MaxNorm = 3, 1, 1
	return s
}

// buildDP is the Builder of every process of the data-parallel tests:
// each call loads its own stories260K bundle.
func buildDP(want inproc.Want) (*inproc.Roles, error) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		return nil, err
	}
	return inproc.BuildSome(dpSpec(), train.Setup{Bundle: b}, nil, want)
}

// localDP builds in this process what the placed run of
// TestStartServe_DataParallel runs in its workers: the actor and the
// critic on 2 goroutine ranks each (collective.NewLocal), 2 replicas of
// the reference, behind the same fan-outs, and the rollout engine.
func localDP(t *testing.T) role.Set {
	t.Helper()
	const n = 2
	ac, cc := collective.NewLocal(n), collective.NewLocal(n)
	ranks := make([]*inproc.Roles, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			ranks[r], errs[r] = buildDP(inproc.Want{Actor: true, Reference: true, Critic: true, ActorComm: ac[r], CriticComm: cc[r]})
			if errs[r] != nil {
				ac[r].Close()
				cc[r].Close()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	rollout := must(buildDP(inproc.Want{Rollout: true}))(t)
	t.Cleanup(func() {
		rollout.Close()
		for r := range n {
			ac[r].Close()
			cc[r].Close()
		}
	})
	var actors []role.Actor
	var critics []role.Critic
	var refs []role.Reference
	for _, x := range ranks {
		actors, critics, refs = append(actors, x.Actor), append(critics, x.Critic), append(refs, x.Reference)
	}
	return role.Set{Actor: must(group.NewActor(actors))(t), Critic: must(group.NewCritic(critics))(t),
		Reference: must(group.NewReference(refs))(t), Rollout: rollout.Rollout}
}

// TestStartServe_DataParallel places the actor with its reference on 2
// worker ranks and the critic on 2 more, at ZeRO stage 3: each group
// bootstraps its collective group through the driver's board, and every
// call through the driver's fan-outs equals the same call on the same
// groups built in this process bit for bit (TCP and in-process
// collectives reduce in one order): log-probs, values, two optimizer
// steps of each, the weights published from rank 0 to the rollout
// engine's worker, and a checkpoint the placed ranks write, which the
// in-process group reads back after one more step of its own.
func TestStartServe_DataParallel(t *testing.T) {
	ctx := context.Background()
	cfg := launch.DefaultConfig()
	cfg.Colocate.ActorRef, cfg.Actor.NumWorkersPerNode, cfg.Ref.NumWorkersPerNode, cfg.Critic.NumWorkersPerNode = true, 2, 2, 2
	plan := slurmPlan(t, cfg, launch.Needs{Critic: true, Reference: true})
	if plan.WorldSize != 6 {
		t.Fatalf("plan of %d processes, want 6 (driver, 2 actor-ref, 2 critic, rollout):\n%s", plan.WorldSize, plan)
	}
	o := driverOptions(plan)
	o.Build = buildDP
	port, done := startDriver(t, o)
	for _, g := range plan.Groups[1:] {
		for _, r := range g.Ranks {
			wo := workerOptions(plan, r.Global, port)
			wo.Build = buildDP
			serve(t, wo)
		}
	}
	s := awaitStart(t, done)
	if s.err != nil {
		t.Fatal(s.err)
	}
	set, local := s.placed.Set, localDP(t)
	for name, r := range map[string]any{"actor": set.Actor, "critic": set.Critic, "reference": set.Reference} {
		if !strings.HasPrefix(reflect.TypeOf(r).String(), "*group.") {
			t.Fatalf("the %s is a %T, not the fan-out over its ranks", name, r)
		}
	}
	seqs := ragged(1, 6)
	req := role.LogProbsRequest{Seqs: seqs}
	sameRows(t, "actor", must(set.Actor.LogProbs(ctx, req))(t).LogProbs, must(local.Actor.LogProbs(ctx, req))(t).LogProbs)
	sameRows(t, "reference", must(set.Reference.LogProbs(ctx, req))(t).LogProbs, must(local.Reference.LogProbs(ctx, req))(t).LogProbs)
	trainSteps(t, set, local, seqs)

	if err := s.placed.Sync(ctx, set.Actor, set.Rollout, 1); err != nil {
		t.Fatal(err)
	}
	w := must(local.Actor.Weights(ctx))(t)
	w.Version = 1
	if err := local.Rollout.LoadWeights(ctx, w); err != nil {
		t.Fatal(err)
	}
	sameGenerate(t, set.Rollout, local.Rollout, 1)

	root := filepath.Join(t.TempDir(), "_actor")
	saved := must(set.Actor.Save(ctx, role.SaveRequest{Root: root, Step: 1, Keep: 1, State: []byte(`{"iteration":1}`)}))(t)
	if !train.Sharded(saved.Dir) {
		t.Fatalf("%s holds no ZeRO shards", saved.Dir)
	}
	// One more step in this process only, then back to the checkpoint.
	old := must(local.Actor.LogProbs(ctx, req))(t).LogProbs
	step := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig()}, LR: 1e-2, MaxNorm: 1,
		MicroBatches: []role.ActorMicroBatch{{Seqs: seqs.Select([]int{0, 1}), OldLogProbs: old.Select([]int{0, 1}), Advantages: rows(5, seqs).Select([]int{0, 1})},
			{Seqs: seqs.Select([]int{2, 3}), OldLogProbs: old.Select([]int{2, 3}), Advantages: rows(6, seqs).Select([]int{2, 3})}}}
	must(local.Actor.TrainStep(ctx, step))(t)
	if reflect.DeepEqual(must(local.Actor.LogProbs(ctx, req))(t).LogProbs, old) {
		t.Fatal("a step changed no log-prob")
	}
	if loaded := must(local.Actor.Load(ctx, role.LoadRequest{Dir: saved.Dir}))(t); loaded.Step != 1 || strings.Join(strings.Fields(string(loaded.State)), "") != `{"iteration":1}` {
		t.Fatalf("loaded step %d state %s", loaded.Step, loaded.State)
	}
	sameRows(t, "actor after loading the placed checkpoint", must(local.Actor.LogProbs(ctx, req))(t).LogProbs,
		must(set.Actor.LogProbs(ctx, req))(t).LogProbs)
}
