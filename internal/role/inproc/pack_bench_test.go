//go:build unix

package inproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/par"
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
// (GRPO with a k3 KL loss) on stories260K, with one kernel thread:
//
//   - experience: actor and reference log-probs of a rollout batch of 64
//     sequences, one pass each (--rollout.micro_batch_size 0, the
//     recipe's);
//   - train/micro=N: one actor optimizer step over the same 64 sequences,
//     shuffled and cut into micro-batches of N (the recipe's 4; 16 for
//     comparison).
//
// The sequences are GSM8K problems with their reference solutions as
// responses, cut at the recipe's --data.max_len 1280: the length spread
// of a policy that solves GSM8K (stories260K's own rollouts all run to
// max_new_tokens). Positions past stories260K's 512 make no sense to the
// model but cost what they cost: this is a timing. Each sub-benchmark
// reports the medians (ms) of wall and CPU time (CPU time varies less on
// a shared machine), the speed-ups padded/packed, and the tokens and the
// token slots ([rows, T] summed over the passes) of each layout. Run it
// with -benchtime=5x for five rounds.
func BenchmarkPackedPhases(b *testing.B) {
	const batch = 64
	defer par.SetThreads(par.Threads())
	par.SetThreads(1) // one kernel thread: CPU time is the work done
	bundle, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := gsm8kSequences(b, bundle.Tok, batch, 1280) // the recipe's --data.max_len
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
	b.Run("experience", func(b *testing.B) {
		alternate(b, []role.Sequences{s}, func(pack bool) {
			for _, lp := range []role.LogProber{actors[pack], ref} {
				if _, err := lp.LogProbs(ctx, role.LogProbsRequest{Seqs: s, Pack: pack}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	adv := perToken(3, s, 1)
	order := rand.New(rand.NewPCG(4, 4)).Perm(batch) // the trainer shuffles before it splits
	for _, micro := range []int{4, 16} {
		step := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.001, KLEstimator: rl.K3},
			LR: 1e-6, MaxNorm: 1}
		var passes []role.Sequences
		for lo := 0; lo < batch; lo += micro {
			idx := order[lo : lo+micro]
			step.MicroBatches = append(step.MicroBatches, role.ActorMicroBatch{Seqs: s.Select(idx),
				OldLogProbs: old.LogProbs.Select(idx), Advantages: adv.Select(idx), RefLogProbs: old.LogProbs.Select(idx)})
			passes = append(passes, s.Select(idx))
		}
		b.Run(fmt.Sprintf("train/micro=%d", micro), func(b *testing.B) {
			alternate(b, passes, func(pack bool) {
				req := step
				req.Pack = pack
				if _, err := actors[pack].TrainStep(ctx, req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// alternate runs f(false) (padded) and f(true) (packed) in turn b.N times
// and reports the medians, the speed-ups and the token slots of passes.
func alternate(b *testing.B, passes []role.Sequences, f func(pack bool)) {
	wall, cpu := map[bool][]float64{}, map[bool][]float64{}
	for range b.N {
		for _, pack := range []bool{false, true} {
			w0, c0 := time.Now(), cpuTime(b)
			f(pack)
			wall[pack] = append(wall[pack], float64(time.Since(w0).Milliseconds()))
			cpu[pack] = append(cpu[pack], float64((cpuTime(b) - c0).Milliseconds()))
		}
	}
	med := func(x []float64) float64 {
		x = slices.Clone(x)
		slices.Sort(x)
		return x[len(x)/2]
	}
	tokens, slotsOf := 0, map[bool]int{}
	for _, p := range passes {
		for _, t := range p.Tokens {
			tokens += len(t)
		}
		for _, pack := range []bool{false, true} {
			slotsOf[pack] += slots(p, 0, pack)
		}
	}
	for pack, name := range map[bool]string{false: "padded", true: "packed"} {
		b.ReportMetric(med(wall[pack]), name+"-ms")
		b.ReportMetric(med(cpu[pack]), name+"-cpu-ms")
		b.ReportMetric(float64(slotsOf[pack]), name+"-slots")
	}
	b.ReportMetric(med(wall[false])/med(wall[true]), "speedup")
	b.ReportMetric(med(cpu[false])/med(cpu[true]), "cpu-speedup")
	b.ReportMetric(float64(tokens), "tokens")
}

// cpuTime is the CPU time this process has used (user + system): on a
// machine shared with other work it varies less than the wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
