package ppo

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// iterationMetrics gathers what one iteration logs: rewards, KL, lengths,
// advantages, the optimizer steps' losses and ratios, and phase times.
func (t *Trainer) iterationMetrics(r *rollout, e *experience, u updateStats, p *phaseTimer) map[string]float64 {
	m := map[string]float64{}
	m["reward"], m["reward_std"] = meanStd(e.rewards)
	m["score"], _ = meanStd(grade.Scores(e.results))
	m["reward_raw"], _ = meanStd(grade.Rewards(e.results))
	m["return"], _ = meanStd(e.adv.Return)
	if e.adv.GroupRewardStd != nil {
		m["group_reward_std"], _ = meanStd(e.adv.GroupRewardStd)
	}
	lens := make([]float32, r.seqs.Len())
	var truncated float64
	for i, cut := range r.truncated() {
		lens[i] = float32(r.seqs.ResponseLen(i))
		if cut {
			truncated++
		}
	}
	m["response_length"], _ = meanStd(lens)
	m["truncated_frac"] = truncated / float64(max(len(lens), 1))
	m["overlong_penalized"], m["stop_penalized"] = float64(e.overlong), float64(e.stopCut)
	agentMetrics(m, r, e.results)
	if r.prefix.QueryTokens > 0 { // the rollout engine caches prefixes
		m["prefix_cache_hit_rate"] = float64(r.prefix.HitTokens) / float64(r.prefix.QueryTokens)
	}
	extraMetrics(m, e.results)
	if e.kl != nil {
		m["kl"] = e.klMean
	}
	m["kl_coef"] = t.kl.Coef
	e.off.metrics(m, t.cfg.Algo.ISCorrection)
	m["advantage_mean"], m["advantage_std"] = maskedMeanStd(e.adv.Advantages.Data, e.mask.Data)
	actorMetrics(m, u)
	criticMetrics(m, u)
	m["weight_version"] = float64(t.version)
	for name, s := range p.secs {
		m["time_"+name] = s
	}
	m["time_iteration"] = time.Since(p.start).Seconds()
	return m
}

// agentMetrics adds a multi-turn rollout's means: turns per episode
// (agent_turns), the share the environment ended (agent_done_frac), the
// policy's own tokens per episode (action_tokens) and the step reward of
// each of the first turns (agent_reward_turnK, over the episodes that
// reached turn K).
func agentMetrics(m map[string]float64, r *rollout, results []grade.Result) {
	if r.seqs.ActionMasks == nil || len(results) == 0 {
		return
	}
	var turns, done, actions float64
	for i, res := range results {
		turns += res.Extra["agent_turns"]
		done += res.Extra["agent_done"]
		for _, a := range r.seqs.ActionMasks[i] {
			if a {
				actions++
			}
		}
	}
	n := float64(len(results))
	m["agent_turns"], m["agent_done_frac"], m["action_tokens"] = turns/n, done/n, actions/n
	for k, v := range meanExtras(results, func(k string) bool { return strings.HasPrefix(k, "agent_reward_turn") }) {
		m[k] = v
	}
}

// extraMetrics logs the mean of every per-sample value the reward sources
// report (Result.Extra: a mix's per-part rewards, a remote server's
// extra_logs) as reward/<key>; the agent_* values have their own metrics.
func extraMetrics(m map[string]float64, results []grade.Result) {
	for k, v := range meanExtras(results, func(k string) bool { return !strings.HasPrefix(k, "agent_") }) {
		m["reward/"+k] = v
	}
}

// meanExtras is the mean of every Extra value whose key keep accepts, over
// the results that have it.
func meanExtras(results []grade.Result, keep func(string) bool) map[string]float64 {
	sums, counts := map[string]float64{}, map[string]int{}
	for _, r := range results {
		for k, v := range r.Extra {
			if keep(k) {
				sums[k] += v
				counts[k]++
			}
		}
	}
	for k := range sums {
		sums[k] /= float64(counts[k])
	}
	return sums
}

// actorMetrics averages the actor's optimizer steps.
func actorMetrics(m map[string]float64, u updateStats) {
	n := float64(len(u.actor))
	if n == 0 {
		return
	}
	var skipped float64
	for _, s := range u.actor {
		m["policy_loss"] += s.PolicyLoss / n
		m["actor_loss"] += s.Loss / n
		m["entropy"] += s.Entropy / n
		m["clip_frac"] += s.ClipFrac / n
		m["dual_clip_frac"] += s.DualClip / n
		m["approx_kl"] += s.ApproxKL / n
		m["ratio_mean"] += s.RatioMean / n
		m["actor_grad_norm"] += s.GradNorm / n
		m["kl_loss"] += s.KLLoss / n
		m["ratio_max"] = math.Max(m["ratio_max"], s.RatioMax)
		if s.Skipped {
			skipped++
		}
	}
	m["actor_lr"], m["actor_skipped"] = u.actorLR, skipped
}

// criticMetrics averages the critic's optimizer steps.
func criticMetrics(m map[string]float64, u updateStats) {
	n := float64(len(u.critic))
	if n == 0 {
		return
	}
	var skipped float64
	for _, s := range u.critic {
		m["value_loss"] += s.Loss / n
		m["value_clip_frac"] += s.ClipFrac / n
		m["value_mean"] += s.ValueMean / n
		m["critic_grad_norm"] += s.GradNorm / n
		if s.Skipped {
			skipped++
		}
	}
	m["critic_lr"], m["critic_skipped"] = u.criticLR, skipped
}

// headline is the progress bar's text.
func headline(m map[string]float64) string {
	s := fmt.Sprintf("reward %.3f len %.1f", m["reward"], m["response_length"])
	if v, ok := m["agent_turns"]; ok {
		s += fmt.Sprintf(" turns %.1f", v)
	}
	if kl, ok := m["kl"]; ok {
		s += fmt.Sprintf(" kl %.4f", kl)
	}
	if v, ok := m["value_loss"]; ok {
		s += fmt.Sprintf(" vloss %.3f", v)
	}
	return s
}

// sampleRow is one sample shown in the run report.
type sampleRow struct {
	Iteration int
	Prompt    string
	Response  string
	Reward    float64
}

// samplesShown is how many samples of an iteration the report keeps.
const samplesShown = 8

// keepSamples remembers the first and the latest iteration's samples.
func (t *Trainer) keepSamples(r *rollout, e *experience) {
	rows := sampleRows(t.iter, r, e.results)
	if t.firstRun == nil {
		t.firstRun = rows
	}
	t.lastRun = rows
}

// sampleRows takes one sample of each of the first prompts.
func sampleRows(iter int, r *rollout, results []grade.Result) []sampleRow {
	var rows []sampleRow
	for i := 0; i < r.seqs.Len() && len(rows) < samplesShown; i += r.g {
		rows = append(rows, sampleRow{Iteration: iter, Prompt: r.prompts[i].Text, Response: r.texts[i], Reward: results[i].Reward})
	}
	return rows
}

// meanStd returns the mean and the population standard deviation.
func meanStd(x []float32) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		d := float64(v) - mean
		std += d * d
	}
	return mean, math.Sqrt(std / float64(len(x)))
}

// maskedMeanStd is meanStd over the positions where mask ≠ 0.
func maskedMeanStd(x, mask []float32) (mean, std float64) {
	var sel []float32
	for i, m := range mask {
		if m != 0 {
			sel = append(sel, x[i])
		}
	}
	return meanStd(sel)
}
