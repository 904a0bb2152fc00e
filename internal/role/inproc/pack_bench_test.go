package inproc

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// gsm8kSlice is the GSM8K slice the recipe test trains on.
const gsm8kSlice = "../../data/testdata/gsm8k/train_slice.jsonl"

// gsm8kSequences returns n GSM8K problems as prompt+response sequences
// for stories260K: the prompt as recipes/gsm8k_grpo.yaml renders it
// without a chat template ("Question: …\nAnswer:", BOS first) and the
// reference solution as the response, cut to maxLen tokens in all. The
// records are drawn at random (seeded), so lengths spread as the
// solutions of a GSM8K batch do.
func gsm8kSequences(tb testing.TB, tok tokenizer.Tokenizer, n, maxLen int) role.Sequences {
	tb.Helper()
	f, err := os.Open(gsm8kSlice)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var recs []struct{ Question, Answer string }
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, r)
	}
	var s role.Sequences
	for _, k := range rand.New(rand.NewPCG(1, 2)).Perm(len(recs))[:n] {
		p := append([]int32{1}, ids(tok.Encode("Question: "+recs[k].Question+"\nAnswer:"))...)
		toks := append(p, ids(tok.Encode(" "+recs[k].Answer))...)
		s.Tokens, s.PromptLens = append(s.Tokens, toks[:min(len(toks), maxLen)]), append(s.PromptLens, len(p))
	}
	return s
}

func ids(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}

// slots is the token positions the layouts of s's passes compute, in
// chunks of size sequences.
func slots(s role.Sequences, size int, pack bool) int {
	n := 0
	_ = chunks(s, size, func(c role.Sequences) error {
		l := layoutOf(c, pack)
		n += l.rows * l.t
		return nil
	})
	return n
}

// BenchmarkPackedPhases times, padded and packed in alternating rounds,
// the work of the PPO trainer's two model phases for the GSM8K recipe
// (GRPO with a k3 KL loss) on stories260K: experience = actor and
// reference log-probs of a rollout batch in one pass each (rollout
// micro-batch 0); train = one actor optimizer step over micro-batches of
// 4. The sequences are GSM8K problems with their reference solutions as
// responses: the length spread a policy that solves GSM8K produces
// (stories260K's own rollouts all run to max_new_tokens). It reports the
// medians (ms) and the speed-ups (padded/packed), and the token slots each
// layout computes. Run it with -benchtime=5x for five rounds.
func BenchmarkPackedPhases(b *testing.B) {
	const batch, micro = 64, 4
	bundle, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := gsm8kSequences(b, bundle.Tok, batch, 512)
	ctx := context.Background()
	ref := NewReference(storiesModel(b), 0)
	actors := map[bool]*Actor{}
	for _, pack := range []bool{false, true} {
		if actors[pack], err = NewActor(train.Model{Module: storiesModel(b)}, optim.DefaultConfig(), 0); err != nil {
			b.Fatal(err)
		}
	}
	old, err := ref.LogProbs(ctx, role.LogProbsRequest{Seqs: s})
	if err != nil {
		b.Fatal(err)
	}
	adv := perToken(3, s, 1)
	order := rand.New(rand.NewPCG(4, 4)).Perm(batch) // the trainer shuffles before it splits
	step := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.001, KLEstimator: rl.K3},
		LR: 1e-6, MaxNorm: 1}
	for lo := 0; lo < batch; lo += micro {
		idx := order[lo : lo+micro]
		mb := role.ActorMicroBatch{Seqs: s.Select(idx), OldLogProbs: old.LogProbs.Select(idx), Advantages: adv.Select(idx),
			RefLogProbs: old.LogProbs.Select(idx)}
		step.MicroBatches = append(step.MicroBatches, mb)
	}
	times := map[string][]float64{}
	b.ResetTimer()
	for range b.N {
		for _, pack := range []bool{false, true} {
			name := map[bool]string{false: "padded", true: "packed"}[pack]
			start := time.Now()
			for _, lp := range []role.LogProber{actors[pack], ref} {
				if _, err := lp.LogProbs(ctx, role.LogProbsRequest{Seqs: s, Pack: pack}); err != nil {
					b.Fatal(err)
				}
			}
			times[name+"-exp"] = append(times[name+"-exp"], float64(time.Since(start).Milliseconds()))
			req := step
			req.Pack = pack
			start = time.Now()
			if _, err := actors[pack].TrainStep(ctx, req); err != nil {
				b.Fatal(err)
			}
			times[name+"-train"] = append(times[name+"-train"], float64(time.Since(start).Milliseconds()))
		}
	}
	b.StopTimer()
	med := func(k string) float64 {
		x := slices.Clone(times[k])
		slices.Sort(x)
		return x[len(x)/2]
	}
	for _, k := range []string{"padded-exp", "packed-exp", "padded-train", "packed-train"} {
		b.ReportMetric(med(k), k+"-ms")
	}
	b.ReportMetric(med("padded-exp")/med("packed-exp"), "exp-speedup")
	b.ReportMetric(med("padded-train")/med("packed-train"), "train-speedup")
	tokens := 0
	for _, t := range s.Tokens {
		tokens += len(t)
	}
	var trainSlots [2]int
	for _, mb := range step.MicroBatches {
		trainSlots[0] += slots(mb.Seqs, 0, false)
		trainSlots[1] += slots(mb.Seqs, 0, true)
	}
	b.ReportMetric(float64(tokens), "tokens")
	b.ReportMetric(float64(slots(s, 0, false)), "padded-exp-slots")
	b.ReportMetric(float64(slots(s, 0, true)), "packed-exp-slots")
	b.ReportMetric(float64(trainSlots[0]), "padded-train-slots")
	b.ReportMetric(float64(trainSlots[1]), "packed-train-slots")
}
