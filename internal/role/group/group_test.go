package group_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/group"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// spec is an actor and a critic (stories260K's backbone with a fresh
// value head) at ZeRO stage, clipping at 1.
func spec(stage int) role.Spec {
	adam := role.Adam(optim.DefaultConfig())
	return role.Spec{Seed: 3, ZeroStage: stage, Actor: role.ActorSpec{Adam: adam, MaxNorm: 1},
		Critic: &role.CriticSpec{Adam: adam, MaxNorm: 1}}
}

// stories opens its own stories260K bundle (as each worker process does).
func stories(t *testing.T) train.Setup {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

// ranks builds an actor and a critic on n goroutine ranks at stage (n =
// 0: one process, no Comm) and returns them, the fan-outs when n > 0, and
// the Comms (to break one).
type built struct {
	actors  []role.Actor
	critics []role.Critic
	actor   role.Actor
	critic  role.Critic
	comms   []collective.Comm // the actor's
}

func build(t *testing.T, n, stage int, opts ...group.Option) built {
	t.Helper()
	if n == 0 {
		r, err := inproc.BuildSome(spec(stage), stories(t), nil, inproc.Want{Actor: true, Critic: true})
		if err != nil {
			t.Fatal(err)
		}
		return built{actor: r.Actor, critic: r.Critic}
	}
	ac, cc := collective.NewLocal(n), collective.NewLocal(n)
	t.Cleanup(func() {
		for r := range n {
			ac[r].Close()
			cc[r].Close()
		}
	})
	b := built{actors: make([]role.Actor, n), critics: make([]role.Critic, n), comms: ac}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		env := stories(t)
		wg.Go(func() {
			ro, err := inproc.BuildSome(spec(stage), env, nil, inproc.Want{Actor: true, Critic: true, ActorComm: ac[r], CriticComm: cc[r]})
			if err != nil {
				errs[r] = err
				ac[r].Close()
				cc[r].Close()
				return
			}
			b.actors[r], b.critics[r] = ro.Actor, ro.Critic
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.actor, err = group.NewActor(b.actors, opts...); err != nil {
		t.Fatal(err)
	}
	if b.critic, err = group.NewCritic(b.critics, opts...); err != nil {
		t.Fatal(err)
	}
	return b
}

// seqs returns n random stories260K sequences: prompts of 1–6, responses
// of 1–9 tokens.
func seqs(seed uint64, n int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 1))
	var s role.Sequences
	for range n {
		p, a := 1+r.IntN(6), 1+r.IntN(9)
		toks := make([]int32, p+a)
		for j := range toks {
			toks[j] = int32(3 + r.IntN(500))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, p)
	}
	return s
}

// rows returns random per-token values shaped like s's responses.
func rows(seed uint64, s role.Sequences, mean, scale float64) role.PerToken {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make(role.PerToken, s.Len())
	for i := range out {
		out[i] = make([]float32, s.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = float32(mean + r.NormFloat64()*scale)
		}
	}
	return out
}

// steps are an actor and a critic step of m micro-batches of 2 sequences.
func steps(m int) (role.ActorStep, role.CriticStep) {
	a := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), EntropyCoef: 0.01}, LR: 1e-3, MaxNorm: 1}
	c := role.CriticStep{Loss: rl.DefaultValueLossConfig(), LR: 1e-3, MaxNorm: 1}
	for i := range m {
		s := seqs(uint64(10+i), 2)
		a.MicroBatches = append(a.MicroBatches, role.ActorMicroBatch{Seqs: s, OldLogProbs: rows(uint64(20+i), s, -6, 0.5),
			Advantages: rows(uint64(30+i), s, 0, 1)})
		c.MicroBatches = append(c.MicroBatches, role.CriticMicroBatch{Seqs: s, OldValues: rows(uint64(40+i), s, 0, 0.1),
			Returns: rows(uint64(50+i), s, 0.5, 1)})
	}
	return a, c
}

// maxDiff is the largest |a − b|/max(1, |b|).
func maxDiff(t *testing.T, a, b role.PerToken) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d rows, want %d", len(a), len(b))
	}
	var d float64
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("row %d: %d values, want %d", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j]))/math.Max(1, math.Abs(float64(b[i][j]))))
		}
	}
	return d
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// params wraps role weights as parameters.
func params(t *testing.T, a role.Actor) nn.Params {
	t.Helper()
	w, err := a.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return inproc.ModelParams(w.Params)
}

// TestGroup_MatchesOneProcess: an actor and a critic on 2 ranks behind
// the fan-out, at ZeRO stages 0 and 3, answer log-probs and values as one
// process does (5 sequences in shares of 3 and 2; one sequence, rank 1
// getting none, which at stage 3 still gathers with rank 0), and take an
// optimizer step of 4 micro-batches whose merged loss terms, tokens,
// statistics and gradient norm, and whose updated weights, equal the
// one-process step's within 1e-6 (log-probs and values within 1e-5:
// each share is padded on its own).
func TestGroup_MatchesOneProcess(t *testing.T) {
	ctx := context.Background()
	for _, stage := range []int{0, 3} {
		t.Run(fmt.Sprintf("stage=%d", stage), func(t *testing.T) {
			one, g := build(t, 0, 0), build(t, 2, stage)
			for _, n := range []int{5, 1} {
				s := seqs(uint64(n), n)
				want, err := one.actor.LogProbs(ctx, role.LogProbsRequest{Seqs: s})
				if err != nil {
					t.Fatal(err)
				}
				got, err := g.actor.LogProbs(ctx, role.LogProbsRequest{Seqs: s})
				if err != nil {
					t.Fatal(err)
				}
				// Each share is padded to its own longest sequence, which
				// changes the float rounding of the passes as another
				// --rollout.micro_batch_size does (~1e-6 relative).
				d := maxDiff(t, got.LogProbs, want.LogProbs)
				t.Logf("%d sequences: log-probs within %.3g relative", n, d)
				if d > 1e-5 {
					t.Errorf("%d sequences: log-probs differ by %g relative", n, d)
				}
				wv, err := one.critic.Values(ctx, role.ValuesRequest{Seqs: s, Pack: true})
				if err != nil {
					t.Fatal(err)
				}
				gv, err := g.critic.Values(ctx, role.ValuesRequest{Seqs: s, Pack: true})
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(t, gv.Values, wv.Values); d > 1e-5 {
					t.Errorf("%d sequences: values differ by %g", n, d)
				}
			}
			a, c := steps(4)
			wantA, err := one.actor.TrainStep(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			gotA, err := g.actor.TrainStep(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if gotA.Tokens != wantA.Tokens || gotA.Skipped || wantA.GradNorm == 0 {
				t.Fatalf("actor step: %+v, one process %+v", gotA, wantA)
			}
			for _, v := range [][3]any{{"loss", gotA.Loss, wantA.Loss}, {"policy loss", gotA.PolicyLoss, wantA.PolicyLoss},
				{"entropy", gotA.Entropy, wantA.Entropy}, {"clip fraction", gotA.ClipFrac, wantA.ClipFrac},
				{"approx KL", gotA.ApproxKL, wantA.ApproxKL}, {"ratio mean", gotA.RatioMean, wantA.RatioMean},
				{"ratio max", gotA.RatioMax, wantA.RatioMax}, {"grad norm", gotA.GradNorm, wantA.GradNorm}} {
				if !near(v[1].(float64), v[2].(float64), 1e-6) {
					t.Errorf("actor step %s: %v on 2 ranks, %v in one process", v[0], v[1], v[2])
				}
			}
			wantC, err := one.critic.TrainStep(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			gotC, err := g.critic.TrainStep(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if gotC.Tokens != wantC.Tokens || !near(gotC.Loss, wantC.Loss, 1e-6) || !near(gotC.GradNorm, wantC.GradNorm, 1e-6) ||
				!near(gotC.ValueMean, wantC.ValueMean, 1e-6) || !near(gotC.ClipFrac, wantC.ClipFrac, 1e-6) {
				t.Errorf("critic step: %+v on 2 ranks, %+v in one process", gotC, wantC)
			}
			d := collectivetest.Compare(t, params(t, g.actor), params(t, one.actor))
			t.Logf("actor after one step: worst tensor %s, %.3g relative", d.Name, d.Rel)
			if d.Rel > 1e-6 {
				t.Errorf("actor after one step: %s differs by %.3g relative", d.Name, d.Rel)
			}
		})
	}
}

// TestGroup_Refusals: a step whose micro-batches do not split evenly is
// refused before any rank runs, naming the flags, the counts and the
// ranks; a rank that fails mid-step fails the call with an error naming
// the role and the rank's place, and the other rank is released.
func TestGroup_Refusals(t *testing.T) {
	ctx := context.Background()
	where := group.Where(func(r int) string { return fmt.Sprintf("rank %d on host-%c", 5+r, 'a'+r) })
	g := build(t, 2, 2, where)
	before := params(t, g.actor)
	a, c := steps(3)
	_, err := g.actor.TrainStep(ctx, a)
	for _, want := range []string{"3 micro-batches", "--train.batch_size / --train.micro_batch_size", "actor's 2 data-parallel ranks", "--actor.num_nodes × --actor.num_workers_per_node"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("3 micro-batches on 2 ranks: %v, want it to say %q", err, want)
		}
	}
	if _, err := g.critic.TrainStep(ctx, c); err == nil || !strings.Contains(err.Error(), "critic's 2 data-parallel ranks") {
		t.Fatalf("critic: %v", err)
	}
	if name := collectivetest.FirstDifferent(params(t, g.actor), before); name != "" {
		t.Fatalf("a refused step changed %s", name)
	}

	g.comms[1].Close() // rank 1 is lost
	a, _ = steps(2)
	_, err = g.actor.TrainStep(ctx, a)
	if err == nil || !strings.Contains(err.Error(), "group: actor rank ") || !strings.Contains(err.Error(), " on host-") ||
		!strings.Contains(err.Error(), ": train step: ") {
		t.Fatalf("a step with a lost rank: %v", err)
	}
	t.Logf("lost rank: %v", err)
}

// TestGroup_RankOrder: shares are contiguous and in rank order, so the
// concatenated log-probs are the sequences' own (each equals the
// one-sequence answer of a single rank).
func TestGroup_RankOrder(t *testing.T) {
	ctx := context.Background()
	g := build(t, 3, 1)
	s := seqs(9, 7) // shares 3, 2, 2
	res, err := g.actor.LogProbs(ctx, role.LogProbsRequest{Seqs: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Len() {
		one, err := g.actor.LogProbs(ctx, role.LogProbsRequest{Seqs: s.Select([]int{i})})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, role.PerToken{res.LogProbs[i]}, one.LogProbs); d > 1e-6 {
			t.Fatalf("sequence %d: %g from its own answer", i, d)
		}
	}
}
