package ppo

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
)

// evalSeedSalt separates the eval seeds from the training stream: every
// evaluation samples the same prompts with the same seeds, so two evals
// differ only by the policy, and evaluating never moves the training RNG.
const evalSeedSalt = 0xe7a1

// EvalResult is one evaluation of the policy on the held-out prompts.
type EvalResult struct {
	Iteration int
	Reward    float64 // mean reward of the policy's samples (after length penalties)
	RewardStd float64
	Score     float64 // mean score (a verifier's 0/1 accuracy)
	Length    float64 // mean response length in tokens
	// Turns is the mean number of actions per episode and Done the share
	// of episodes the environment ended (multi-turn runs; else 0);
	// TurnRewards[k] is the mean step reward of turn k+1.
	Turns, Done float64
	TurnRewards []float64
	// Extra holds the means of the reward sources' per-sample values
	// (reward/<key>: a mix's parts, a remote server's extra_logs).
	Extra map[string]float64
	// KL is the mean over samples of the per-token mean of
	// log π − log π_ref on the policy's own samples (k1, an estimate of
	// KL(π‖π_ref) when sampling at temperature 1); KLSeq sums over the
	// tokens instead. Both 0 without a reference.
	KL, KLSeq float64
	Samples   []sampleRow
}

// evaluate samples the eval prompts with the current policy, scores them
// and logs the result. It does nothing without eval prompts.
func (t *Trainer) evaluate(ctx context.Context) error {
	if len(t.eval) == 0 {
		return nil
	}
	start := time.Now()
	res, err := t.Evaluate(ctx)
	if err != nil {
		return err
	}
	vals := map[string]float64{"reward": res.Reward, "reward_std": res.RewardStd, "score": res.Score,
		"response_length": res.Length, "time_eval": time.Since(start).Seconds()}
	if t.roles.Reference != nil {
		vals["kl"], vals["kl_seq"] = res.KL, res.KLSeq
	}
	if t.agent != nil {
		vals["agent_turns"], vals["agent_done_frac"] = res.Turns, res.Done
		for k, v := range res.TurnRewards {
			vals[fmt.Sprintf("agent_reward_turn%d", k+1)] = v
		}
	}
	maps.Copy(vals, res.Extra)
	t.log.Info("eval", "iteration", t.iter, "reward", res.Reward, "score", res.Score, "kl", res.KL, "length", res.Length)
	if t.evals = append(t.evals, res); len(t.evals) > 2 {
		t.evals = append(t.evals[:1], res) // keep the first and the latest
	}
	return t.out.LogEval(t.iter, vals)
}

// Evaluate samples every eval prompt (eval.n_samples_per_prompt times,
// at eval.temperature, with fixed seeds) with the published policy and
// scores the samples.
func (t *Trainer) Evaluate(ctx context.Context) (EvalResult, error) {
	c := t.cfg
	p := role.SamplingParams{N: c.Eval.NSamples, MaxNewTokens: c.Rollout.MaxNewTokens,
		Temperature: float32(c.Eval.Temperature), TopP: float32(c.Rollout.TopP), TopK: c.Rollout.TopK, StopStrings: c.Rollout.Stop}
	r, err := t.sample(ctx, t.eval, p, c.Train.Seed^evalSeedSalt)
	if err != nil {
		return EvalResult{}, fmt.Errorf("ppo: eval: %w", err)
	}
	results, err := t.score(ctx, r)
	if err != nil {
		return EvalResult{}, fmt.Errorf("ppo: eval: %w", err)
	}
	rewards, _, _ := c.Reward.Length.Apply(grade.Rewards(results), r.seqs.ResponseLens(), r.truncated(), c.Rollout.MaxNewTokens)
	res := EvalResult{Iteration: t.iter, Samples: sampleRows(t.iter, r, results)}
	res.Reward, res.RewardStd = meanStd(rewards)
	res.Score, _ = meanStd(grade.Scores(results))
	lens := make([]float32, r.seqs.Len())
	for i := range lens {
		lens[i] = float32(r.seqs.ResponseLen(i))
	}
	res.Length, _ = meanStd(lens)
	res.Extra = map[string]float64{}
	extraMetrics(res.Extra, results)
	if r.seqs.ActionMasks != nil {
		m := map[string]float64{}
		agentMetrics(m, r, results)
		res.Turns, res.Done = m["agent_turns"], m["agent_done_frac"]
		for k := 1; k <= turnMetrics; k++ {
			v, ok := m[fmt.Sprintf("agent_reward_turn%d", k)]
			if !ok {
				break
			}
			res.TurnRewards = append(res.TurnRewards, v)
		}
	}
	if t.roles.Reference != nil {
		ref, err := t.roles.Reference.LogProbs(ctx, role.LogProbsRequest{Seqs: r.seqs, Pack: t.cfg.DS.PackingSamples})
		if err != nil {
			return EvalResult{}, fmt.Errorf("ppo: eval: reference log-probs: %w", err)
		}
		res.KL, res.KLSeq = logRatio(r.engineLP, ref.LogProbs, r.seqs.ActionMasks)
	}
	return res, nil
}

// logRatio returns the mean over rows of the per-token mean and of the sum
// of policy − reference log-probs, over the action tokens (masks nil:
// every response token).
func logRatio(policy, ref role.PerToken, masks [][]bool) (perToken, perSeq float64) {
	if len(policy) == 0 {
		return 0, 0
	}
	for i, row := range policy {
		var s float64
		n := 0
		for j, lp := range row {
			if masks == nil || masks[i][j] {
				s += float64(lp) - float64(ref[i][j])
				n++
			}
		}
		perSeq += s
		perToken += s / float64(max(n, 1))
	}
	n := float64(len(policy))
	return perToken / n, perSeq / n
}

// Evals returns the first and the latest evaluation of this process.
func (t *Trainer) Evals() []EvalResult { return append([]EvalResult(nil), t.evals...) }
