package ppo

import (
	"context"
	"slices"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// filterStats describes one iteration's dynamic filtering.
type filterStats struct {
	rounds    int     // generation rounds run
	generated int     // groups generated in all rounds
	dropped   int     // groups the filter rejected
	unused    int     // accepted groups beyond rollout.batch_size, not trained on
	scoreSum  float64 // sum of the scores of every generated sample
	samples   int     // samples generated in all rounds
}

// metrics adds the filtering counts to an iteration's metrics.
func (s filterStats) metrics(m map[string]float64) {
	m["dynamic_filtering_rounds"] = float64(s.rounds)
	m["dynamic_filtering_dropped"] = float64(s.dropped)
	m["dynamic_filtering_dropped_frac"] = float64(s.dropped) / float64(max(s.generated, 1))
	m["dynamic_filtering_unused"] = float64(s.unused)
	m["dynamic_filtering_score"] = s.scoreSum / float64(max(s.samples, 1))
}

// collectBatch generates (and, with dynamic filtering, scores and
// filters) the iteration's rollout batch: steps 1–2 of Step.
func (t *Trainer) collectBatch(ctx context.Context, m *phaseTimer) (*rollout, *filterStats, error) {
	if !t.cfg.Algo.DynamicFilter.Enable {
		r, err := t.generate(ctx, t.nextPrompts(), t.samplingParams(), m)
		return r, nil, err
	}
	return t.filtered(ctx, m)
}

// filtered runs DAPO's dynamic sampling: generate rollout.batch_size
// prompts × n, score them, keep the groups the filter accepts, and repeat
// with the next prompts until rollout.batch_size groups are kept or
// MaxRounds rounds have run. Accepted groups beyond the batch size are
// left out (counted as unused), so the batch never grows.
func (t *Trainer) filtered(ctx context.Context, m *phaseTimer) (*rollout, *filterStats, error) {
	return t.filterRounds(ctx, m, nil)
}

// filterRounds is filtered with first, when not nil, as the first
// round's samples (an async run's queued batch).
func (t *Trainer) filterRounds(ctx context.Context, m *phaseTimer, first *rollout) (*rollout, *filterStats, error) {
	f, want := t.cfg.Algo.DynamicFilter, t.cfg.Rollout.BatchSize
	st := &filterStats{}
	kept := &rollout{g: t.cfg.Algo.Advantage.SamplesPerPrompt}
	for st.rounds < f.MaxRounds && kept.groups() < want {
		r := first
		first = nil
		var err error
		if r == nil {
			r, err = t.generate(ctx, t.nextPrompts(), t.samplingParams(), m)
		}
		if err != nil {
			return nil, nil, err
		}
		if r.results == nil { // an environment's episodes come scored
			done := m.phase("reward")
			r.results, err = t.score(ctx, r)
			done()
			if err != nil {
				return nil, nil, err
			}
		}
		st.rounds++
		st.generated += r.groups()
		var keep []int
		for g := range r.groups() {
			scores := grade.Scores(r.results[g*r.g : (g+1)*r.g])
			for _, s := range scores {
				st.scoreSum += float64(s)
			}
			st.samples += len(scores)
			if f.Range.Keep(scores) {
				keep = append(keep, g)
			} else {
				st.dropped++
			}
		}
		kept.append(r.selectGroups(keep))
	}
	if n := kept.groups(); n > want {
		st.unused = n - want
		kept = kept.selectGroups(seq(want))
	}
	return kept, st, nil
}

// groups is the number of prompts (groups of g samples) in the rollout.
func (r *rollout) groups() int { return len(r.prompts) / max(r.g, 1) }

// selectGroups returns a rollout of the groups listed, in that order
// (rows are shared with r, not copied).
func (r *rollout) selectGroups(groups []int) *rollout {
	rows := make([]int, 0, len(groups)*r.g)
	for _, g := range groups {
		for j := range r.g {
			rows = append(rows, g*r.g+j)
		}
	}
	out := &rollout{g: r.g, seqs: r.seqs.Select(rows), engineLP: r.engineLP.Select(rows), prefix: r.prefix}
	for _, i := range rows {
		out.prompts = append(out.prompts, r.prompts[i])
		out.texts = append(out.texts, r.texts[i])
		out.finish = append(out.finish, r.finish[i])
		out.versions = append(out.versions, r.versions[i])
		if r.results != nil {
			out.results = append(out.results, r.results[i])
		}
	}
	return out
}

// append adds o's rows after r's (both must be scored, or neither).
func (r *rollout) append(o *rollout) {
	r.prompts = append(r.prompts, o.prompts...)
	r.seqs.Tokens = append(r.seqs.Tokens, o.seqs.Tokens...)
	r.seqs.PromptLens = append(r.seqs.PromptLens, o.seqs.PromptLens...)
	if o.seqs.ActionMasks != nil { // multi-turn: every round has masks
		r.seqs.ActionMasks = append(r.seqs.ActionMasks, o.seqs.ActionMasks...)
	}
	r.texts = append(r.texts, o.texts...)
	r.finish = append(r.finish, o.finish...)
	r.engineLP = append(r.engineLP, o.engineLP...)
	r.versions = append(r.versions, o.versions...)
	r.results = append(r.results, o.results...)
	r.prefix = r.prefix.Add(o.prefix)
}

// seq is 0…n−1.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return slices.Clip(out)
}
