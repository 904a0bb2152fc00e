package remote

import (
	"context"
	"testing"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
)

// packedCalls runs log-probs, values and an optimizer step of each
// trainable role with Pack set (--ds.packing_samples) over sequences that
// do share rows, and compares every result bit for bit with the same call
// on the in-process roles: the flag crosses the wire and the served roles
// pack as the local ones do.
func packedCalls(t *testing.T, p pair) {
	ctx := context.Background()
	seqs := ragged(3, 7) // 2 to 32 tokens: two to a row next to a longer one
	long := make([]int32, 60)
	long[0] = 1
	for j := 1; j < len(long); j++ {
		long[j] = int32(3 + (j*37)%509)
	}
	seqs.Tokens, seqs.PromptLens = append(seqs.Tokens, long), append(seqs.PromptLens, 20)
	lp := role.LogProbsRequest{Seqs: seqs, Pack: true}
	var old role.PerToken
	for _, c := range []struct {
		name          string
		local, remote role.LogProber
	}{{"reference", p.local.Reference, p.remote.Reference}, {"actor", p.local.Actor, p.remote.Actor}} {
		want := must(c.local.LogProbs(ctx, lp))(t)
		samePerToken(t, "packed "+c.name, must(c.remote.LogProbs(ctx, lp))(t).LogProbs, want.LogProbs)
		old = want.LogProbs
	}
	vr := role.ValuesRequest{Seqs: seqs, Pack: true}
	values := must(p.local.Critic.Values(ctx, vr))(t)
	samePerToken(t, "packed values", must(p.remote.Critic.Values(ctx, vr))(t).Values, values.Values)

	as := role.ActorStep{MicroBatches: []role.ActorMicroBatch{{Seqs: seqs, OldLogProbs: old, Advantages: perToken(5, seqs, 1)}},
		Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig()}, LR: 1e-3, MaxNorm: 1, Pack: true}
	if got, want := must(p.remote.Actor.TrainStep(ctx, as))(t), must(p.local.Actor.TrainStep(ctx, as))(t); got != want || want.Skipped {
		t.Fatalf("packed actor step:\n got %+v\nwant %+v", got, want)
	}
	cs := role.CriticStep{MicroBatches: []role.CriticMicroBatch{{Seqs: seqs, OldValues: values.Values, Returns: perToken(6, seqs, 1)}},
		Loss: rl.DefaultValueLossConfig(), LR: 1e-3, MaxNorm: 1, Pack: true}
	if got, want := must(p.remote.Critic.TrainStep(ctx, cs))(t), must(p.local.Critic.TrainStep(ctx, cs))(t); got != want || want.Skipped {
		t.Fatalf("packed critic step:\n got %+v\nwant %+v", got, want)
	}
	sameParams(t, "served actor after a packed step", weightsOf(t, p.served.Actor), weightsOf(t, p.local.Actor))
}
