package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/train"
)

// pair is the same five roles twice: local ones called directly, and
// served ones reached through a loopback server hosting all five
// (co-location). The driver and the worker have their own planes.
type pair struct {
	local, served, remote    Hosted
	conn                     *Conn
	driverPlane, workerPlane *loopbackPlane
}

func newPair(t *testing.T) pair {
	p := pair{local: buildRoles(t), served: buildRoles(t), driverPlane: newLoopbackPlane(t), workerPlane: newLoopbackPlane(t)}
	srv := startServer(t, serverConfig(p.workerPlane, quietLogger()), p.served)
	p.conn = dial(t, clientConfig(srv.Addr(), p.driverPlane, allRoles...))
	p.remote = p.conn.Hosted()
	return p
}

// ragged returns n random stories260K sequences: prompts of 1–8 and
// responses of 1–24 tokens, the first of every prompt BOS.
func ragged(seed uint64, n int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 11))
	var s role.Sequences
	for range n {
		p, a := 1+r.IntN(8), 1+r.IntN(24)
		toks := make([]int32, p+a)
		toks[0] = 1
		for j := 1; j < len(toks); j++ {
			toks[j] = int32(3 + r.IntN(509))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, p)
	}
	return s
}

// perToken returns random rows shaped like s's responses.
func perToken(seed uint64, s role.Sequences, scale float64) role.PerToken {
	r := rand.New(rand.NewPCG(seed, 12))
	out := make(role.PerToken, s.Len())
	for i := range out {
		out[i] = make([]float32, s.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64() * scale)
		}
	}
	return out
}

// samePerToken fails unless a and b hold the same bits.
func samePerToken(t testing.TB, what string, a, b role.PerToken) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d rows", what, len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(f32bytes(a[i]), f32bytes(b[i])) {
			t.Fatalf("%s: row %d differs:\n%v\n%v", what, i, a[i], b[i])
		}
	}
}

// must(f())(t) is f's value, or t fails with f's error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestRemote_MatchesInProcess runs every role method through a loopback
// server and compares each result, bit for bit, with the same call on an
// identical in-process role; then the served models themselves.
func TestRemote_MatchesInProcess(t *testing.T) {
	ctx := context.Background()
	p := newPair(t)
	seqs := ragged(1, 6)

	t.Run("LogProbs", func(t *testing.T) {
		for _, c := range []struct {
			name          string
			local, remote role.LogProber
		}{{"reference", p.local.Reference, p.remote.Reference}, {"actor", p.local.Actor, p.remote.Actor}} {
			want := must(c.local.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t)
			got := must(c.remote.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t)
			samePerToken(t, c.name, got.LogProbs, want.LogProbs)
		}
	})
	t.Run("Values", func(t *testing.T) {
		want := must(p.local.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t)
		got := must(p.remote.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t)
		samePerToken(t, "values", got.Values, want.Values)
	})
	t.Run("Score", func(t *testing.T) {
		req := role.ScoreRequest{Samples: []grade.Sample{
			{Prompt: "Once", Response: " upon a time 42", Label: "42", Tokens: []int32{1, 5, 6}, ResponseTokens: 2, FinishReason: "stop"},
			{Prompt: "Tom", Response: " ran", Label: "7"},
		}}
		want := must(p.local.Reward.Score(ctx, req))(t)
		got := must(p.remote.Reward.Score(ctx, req))(t)
		if !reflect.DeepEqual(got, want) || len(want.Results) != 2 || len(want.Results[0].Extra) != 2 {
			t.Fatalf("score:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("Generate", func(t *testing.T) { sameGenerate(t, p, 0) })
	t.Run("ActorTrainStep", func(t *testing.T) { actorSteps(t, p, seqs) })
	t.Run("CriticTrainStep", func(t *testing.T) { criticSteps(t, p, seqs) })
	t.Run("Packed", func(t *testing.T) { packedCalls(t, p) })
	t.Run("WeightsToRollout", func(t *testing.T) { weightsToRollout(t, p) })
	t.Run("Checkpoint", func(t *testing.T) { checkpoints(t, p, seqs) })
}

// sameGenerate compares the completions and their weight version.
func sameGenerate(t *testing.T, p pair, version int64) {
	ctx := context.Background()
	req := role.GenerateRequest{Prompts: []role.Prompt{
		{ID: "a", Tokens: []int32{1, 403, 29}, Params: role.SamplingParams{N: 3, MaxNewTokens: 12, Temperature: 0.9, TopK: 40, Seed: 7}},
		{ID: "b", Tokens: []int32{1, 88}, Params: role.SamplingParams{MaxNewTokens: 8}},
		{ID: "c", Tokens: []int32{1, 403}, Params: role.SamplingParams{N: 2, MaxNewTokens: 10, Temperature: 1, TopP: 0.9, MinP: 0.05, Seed: 0, StopTokenIDs: []int32{13}}},
	}}
	want := must(p.local.Rollout.Generate(ctx, req))(t)
	got := must(p.remote.Rollout.Generate(ctx, req))(t)
	for _, r := range [][]role.Generation{want.Results, got.Results} {
		if len(r) != len(req.Prompts) {
			t.Fatalf("%d generations for %d prompts", len(r), len(req.Prompts))
		}
		for i := range r {
			if n := max(req.Prompts[i].Params.N, 1); len(r[i].Completions) != n {
				t.Fatalf("prompt %d: %d completions, want %d", i, len(r[i].Completions), n)
			}
			for _, c := range r[i].Completions {
				if c.WeightVersion != version {
					t.Fatalf("completion of weight version %d, want %d", c.WeightVersion, version)
				}
				if len(c.Tokens) == 0 || len(c.RawLogProbs) != len(c.Tokens) {
					t.Fatalf("prompt %d: completion of %d tokens with %d log-probs", i, len(c.Tokens), len(c.RawLogProbs))
				}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("generate:\n got %+v\nwant %+v", got, want)
	}
}

// actorSteps runs two PPO steps with a KL and an entropy term on both
// actors and compares results and weights.
func actorSteps(t *testing.T, p pair, seqs role.Sequences) {
	ctx := context.Background()
	old := must(p.local.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	ref := must(p.local.Reference.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	adv := perToken(3, seqs, 1)
	isw := perToken(5, seqs, 0.3) // off-policy weights, in the first micro-batch only
	var step role.ActorStep
	for k, idx := range [][]int{{0, 1, 2}, {3, 4, 5}} {
		mb := role.ActorMicroBatch{Seqs: seqs.Select(idx), OldLogProbs: old.Select(idx), Advantages: adv.Select(idx), RefLogProbs: ref.Select(idx)}
		if k == 0 {
			mb.ISWeights = isw.Select(idx)
		}
		step.MicroBatches = append(step.MicroBatches, mb)
	}
	step.Loss = rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.05, KLEstimator: rl.K3, EntropyCoef: 0.01}
	step.LR, step.MaxNorm = 1e-3, 1
	for i := range 2 {
		want := must(p.local.Actor.TrainStep(ctx, step))(t)
		got := must(p.remote.Actor.TrainStep(ctx, step))(t)
		if got != want || want.Skipped || want.Tokens == 0 {
			t.Fatalf("step %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	sameParams(t, "served actor", weightsOf(t, p.served.Actor), weightsOf(t, p.local.Actor))
}

func criticSteps(t *testing.T, p pair, seqs role.Sequences) {
	ctx := context.Background()
	old := must(p.local.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values
	step := role.CriticStep{
		MicroBatches: []role.CriticMicroBatch{{Seqs: seqs, OldValues: old, Returns: perToken(4, seqs, 1)}},
		Loss:         rl.DefaultValueLossConfig(), LR: 1e-3, MaxNorm: 1,
	}
	for i := range 2 {
		want := must(p.local.Critic.TrainStep(ctx, step))(t)
		got := must(p.remote.Critic.TrainStep(ctx, step))(t)
		if got != want || want.Skipped {
			t.Fatalf("step %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	sameParams(t, "served critic", weightsOf(t, p.served.Critic), weightsOf(t, p.local.Critic))
}

// weightsOf reads an in-process role's parameters.
func weightsOf(t testing.TB, r any) []role.Param {
	t.Helper()
	w, ok := r.(interface {
		Weights(context.Context) (role.Weights, error)
	})
	if !ok {
		t.Fatalf("%T has no Weights", r)
	}
	return must(w.Weights(context.Background()))(t).Params
}

// weightsToRollout moves the trained actor's weights to the rollout
// engine: first straight from worker to worker (SyncWeights), then
// through the driver (Actor.Weights, Rollout.LoadWeights).
func weightsToRollout(t *testing.T, p pair) {
	ctx := context.Background()
	w := must(p.local.Actor.Weights(ctx))(t)
	w.Version = 1
	if err := p.local.Rollout.LoadWeights(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := SyncWeights(ctx, p.remote.Actor, p.remote.Rollout, 1); err != nil {
		t.Fatal(err)
	}
	if n, m := p.driverPlane.publishes.Load(), p.driverPlane.fetches.Load(); n+m != 0 {
		t.Fatalf("worker-to-worker sync moved bytes through the driver (%d publishes, %d fetches)", n, m)
	}
	sameGenerate(t, p, 1)

	got := must(p.remote.Actor.Weights(ctx))(t)
	sameParams(t, "Actor.Weights", got.Params, w.Params)
	got.Version = 2
	if err := p.remote.Rollout.LoadWeights(ctx, got); err != nil {
		t.Fatal(err)
	}
	w.Version = 2
	if err := p.local.Rollout.LoadWeights(ctx, w); err != nil {
		t.Fatal(err)
	}
	if p.driverPlane.fetches.Load() != 1 || p.driverPlane.publishes.Load() != 1 {
		t.Fatalf("driver plane: %d fetches, %d publishes; want 1 and 1", p.driverPlane.fetches.Load(), p.driverPlane.publishes.Load())
	}
	sameGenerate(t, p, 2)
}

// checkpoints saves both actors and critics, trains on, loads the
// checkpoints back and exports: same folders, same restored state, same
// files.
func checkpoints(t *testing.T, p pair, seqs role.Sequences) {
	ctx := context.Background()
	dirL, dirR := t.TempDir(), t.TempDir()
	state := json.RawMessage(`{"iteration":3}`)
	before := must(p.local.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	sl := must(p.local.Actor.Save(ctx, role.SaveRequest{Root: dirL, Step: 3, Keep: 2, State: state}))(t)
	sr := must(p.remote.Actor.Save(ctx, role.SaveRequest{Root: dirR, Step: 3, Keep: 2, State: state}))(t)
	if rel, _ := filepath.Rel(dirR, sr.Dir); rel != must(filepath.Rel(dirL, sl.Dir))(t) {
		t.Fatalf("saved to %s and %s", sl.Dir, sr.Dir)
	}
	sameFiles(t, sl.Dir, sr.Dir, train.StateFile) // the state file records when it was saved
	cl := must(p.local.Critic.Save(ctx, role.SaveRequest{Root: filepath.Join(dirL, "critic"), Step: 3, Keep: 1}))(t)
	cr := must(p.remote.Critic.Save(ctx, role.SaveRequest{Root: filepath.Join(dirR, "critic"), Step: 3, Keep: 1}))(t)
	sameFiles(t, cl.Dir, cr.Dir, train.StateFile)
	values := must(p.remote.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values

	actorSteps(t, p, seqs) // move away from the checkpoints
	criticSteps(t, p, seqs)
	for _, c := range []struct {
		r   role.Critic
		dir string
	}{{p.local.Critic, cl.Dir}, {p.remote.Critic, cr.Dir}} {
		if res := must(c.r.Load(ctx, role.LoadRequest{Dir: c.dir}))(t); res.Step != 3 {
			t.Fatalf("critic load: %+v", res)
		}
	}
	samePerToken(t, "values after Load", must(p.remote.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values, values)
	sameParams(t, "critic after Load", weightsOf(t, p.served.Critic), weightsOf(t, p.local.Critic))
	ll := must(p.local.Actor.Load(ctx, role.LoadRequest{Dir: sl.Dir}))(t)
	lr := must(p.remote.Actor.Load(ctx, role.LoadRequest{Dir: sr.Dir}))(t)
	var compact bytes.Buffer
	json.Compact(&compact, lr.State)
	if !reflect.DeepEqual(ll, lr) || ll.Step != 3 || compact.String() != string(state) {
		t.Fatalf("load: local %+v, remote %+v", ll, lr)
	}
	after := must(p.remote.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	samePerToken(t, "log-probs after Load", after, before)

	el, er := filepath.Join(dirL, "final"), filepath.Join(dirR, "final")
	if err := p.local.Actor.Export(ctx, role.ExportRequest{Dir: el}); err != nil {
		t.Fatal(err)
	}
	if err := p.remote.Actor.Export(ctx, role.ExportRequest{Dir: er}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, el, er, "")
	el, er = filepath.Join(dirL, "critic-final"), filepath.Join(dirR, "critic-final")
	if err := p.local.Critic.Export(ctx, role.ExportRequest{Dir: el}); err != nil {
		t.Fatal(err)
	}
	if err := p.remote.Critic.Export(ctx, role.ExportRequest{Dir: er}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, el, er, "")
}

// sameFiles fails unless folders a and b hold the same files with the
// same bytes (skip excepted).
func sameFiles(t testing.TB, a, b, skip string) {
	t.Helper()
	ea := must(os.ReadDir(a))(t)
	eb := must(os.ReadDir(b))(t)
	if len(ea) != len(eb) || len(ea) == 0 {
		t.Fatalf("%s has %d entries, %s %d", a, len(ea), b, len(eb))
	}
	for i, e := range ea {
		if e.Name() != eb[i].Name() {
			t.Fatalf("%s vs %s", e.Name(), eb[i].Name())
		}
		if e.Name() == skip || e.IsDir() {
			continue
		}
		x := must(os.ReadFile(filepath.Join(a, e.Name())))(t)
		y := must(os.ReadFile(filepath.Join(b, e.Name())))(t)
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs", e.Name())
		}
	}
}
