package ppo

import (
	"context"
	"errors"
	"fmt"
	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"slices"
	"strings"
	"sync"

	"github.com/gorlhf/gorlhf/internal/env"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Multi-turn rollouts (OpenRLHF's agent executor). Every sample is an
// episode with its own environment instance:
//
//	tokens:  [observation₀][action₁][feedback₁][action₂] … [action_k]
//	mask:     (prompt)      1 1 1    0 0 0 0    1 1         1 1
//
// The first observation (Reset) is the prompt row. Each turn, every
// episode still running asks the rollout role for one action, all of them
// in one Generate call (the engine batches them); the action's tokens are
// kept exactly as sampled, with the engine's log-probs, and count in the
// loss. The environment's feedback is tokenized as a continuation and
// appended with mask 0: the policy reads it but is not trained on it (the
// response's action mask, role.Sequences.ActionMasks). The episode's
// reward is the sum of its step rewards and sits on the last action token,
// where package rl puts a sequence's reward; the feedback after the last
// action is not appended. An episode ends when the environment says done,
// after Agent.MaxTurns actions, or when the next feedback and one more
// token would pass data.max_len or the model's position limit; the last
// two count as truncated (finish reason "length").

// turnMetrics is how many turns get their own reward metric
// (agent_reward_turnK: the mean step reward of turn K over the episodes
// that reached it).
const turnMetrics = 8

// maxEnvCalls bounds the environment calls (Reset, Step) in flight at
// once; an environment may be a remote service.
const maxEnvCalls = 32

// episode is one multi-turn sample being played.
type episode struct {
	env    env.Env
	prompt Prompt    // the first observation, as the row's prompt
	toks   []int32   // observation, then actions and feedback
	mask   []bool    // per response token: an action token
	lp     []float32 // engine log-probs of action tokens; 0 on feedback
	text   strings.Builder
	action string // the latest action, as the environment reads it
	// feedback, reward and done are the latest step's outcome
	feedback string
	reward   float64
	rewards  []float64 // per turn
	ret      float64
	turns    int
	done     bool // the environment ended the episode
	cut      bool // max turns or the token budget ended it
	version  int64
	// posLimit: the latest action stopped at the model's position limit
	posLimit bool
}

// over reports whether the episode has ended.
func (e *episode) over() bool { return e.done || e.cut }

// openAgent resolves the environment factory of a multi-turn run.
func (t *Trainer) openAgent() error {
	if !t.cfg.Agent.Enabled() {
		if t.rt.Agent != nil {
			return errors.New("ppo: an environment factory (Runtime.Agent) was given but Config.Agent.Env is empty")
		}
		return nil
	}
	t.agent = t.rt.Agent
	if t.agent == nil {
		f, err := env.Open(t.cfg.Agent.Env, t.cfg.Agent.EnvArgs)
		if err != nil {
			return fmt.Errorf("ppo: %s: %w", cfgflag.Flag(&t.cfg, &t.cfg.Agent.Env), err)
		}
		t.agent = f
	}
	return nil
}

// tokenBudget is the most tokens an episode (a prompt and its response)
// may hold: data.max_len, or the policy's position limit when shorter.
func (t *Trainer) tokenBudget() int {
	b := t.cfg.Data.MaxLen
	if p := t.rt.MaxPositions; p > 0 {
		b = min(b, p)
	}
	return b
}

// sampleEpisodes plays p.N episodes of every prompt with the policy the
// rollout role serves and returns them as a scored rollout. Episode i
// (prompt i/N) samples turn k with a seed drawn from (base, i, k) alone.
func (t *Trainer) sampleEpisodes(ctx context.Context, prompts []Prompt, p role.SamplingParams, base uint64) (*rollout, error) {
	g := max(p.N, 1)
	eps := make([]*episode, len(prompts)*g)
	for i := range eps {
		eps[i] = &episode{env: t.agent(), prompt: prompts[i/g]}
	}
	defer t.closeEpisodes(ctx, eps)
	if err := forEach(ctx, allOf(eps), func(i int) error { return t.reset(ctx, eps[i]) }); err != nil {
		return nil, err
	}
	var prefix role.PrefixCacheUse
	for turn := 0; ; turn++ {
		active := running(eps)
		if len(active) == 0 {
			break
		}
		use, err := t.act(ctx, eps, active, p, base, turn)
		if err != nil {
			return nil, err
		}
		prefix = prefix.Add(use)
		if err := forEach(ctx, active, func(i int) error { return t.step(ctx, eps[i]) }); err != nil {
			return nil, err
		}
		for _, i := range active {
			t.advance(eps[i])
		}
	}
	r := t.episodeRollout(eps, g)
	r.prefix = prefix
	return r, nil
}

// reset starts an episode: its first observation becomes the prompt row
// (the dataset prompt's own tokens when the observation is that text).
func (t *Trainer) reset(ctx context.Context, e *episode) error {
	obs, err := e.env.Reset(ctx, e.prompt.Text, e.prompt.Label)
	if err != nil {
		return fmt.Errorf("ppo: environment %s: reset: %w", t.cfg.Agent.Env, err)
	}
	if obs != e.prompt.Text {
		ids := toInt32(t.rt.Tok.EncodeWith(obs, t.encodeOpts()))
		if bos := t.rt.bos(); bos >= 0 && (len(ids) == 0 || ids[0] != bos) {
			ids = append([]int32{bos}, ids...)
		}
		if len(ids) == 0 {
			return fmt.Errorf("ppo: environment %s: reset returned an empty observation for prompt %q", t.cfg.Agent.Env, e.prompt.Text)
		}
		e.prompt.Text, e.prompt.IDs = obs, ids
	}
	if n := len(e.prompt.IDs); n >= t.tokenBudget() {
		return fmt.Errorf("ppo: environment %s: the first observation has %d tokens, no room under the budget of %d (data.max_len, model positions)",
			t.cfg.Agent.Env, n, t.tokenBudget())
	}
	e.toks = slices.Clone(e.prompt.IDs)
	return nil
}

// encodeOpts parses special tokens in environment text when prompts are
// rendered with a chat template (the environment then speaks in turns).
func (t *Trainer) encodeOpts() tokenizer.EncodeOptions {
	return tokenizer.EncodeOptions{ParseSpecial: t.cfg.Data.ApplyChatTemplate && t.rt.Template != nil}
}

// act generates the next action of every running episode in one call and
// returns what the rollout engine's prefix cache saved (each turn's
// prompt extends the last one's).
func (t *Trainer) act(ctx context.Context, eps []*episode, active []int, p role.SamplingParams, base uint64, turn int) (role.PrefixCacheUse, error) {
	reqs := make([]role.Prompt, len(active))
	budget := t.tokenBudget()
	for k, i := range active {
		e := eps[i]
		q := p
		q.N, q.MaxNewTokens = 1, budget-len(e.toks) // ≥ 1: advance keeps room for a token
		if p.MaxNewTokens > 0 {
			q.MaxNewTokens = min(q.MaxNewTokens, p.MaxNewTokens)
		}
		q.Seed = turnSeed(base, i, turn)
		// Clip: appending to e.toks later must not write where the request's
		// prompt lies
		reqs[k] = role.Prompt{ID: fmt.Sprint(i), Tokens: slices.Clip(e.toks), Params: q}
	}
	res, err := t.roles.Rollout.Generate(ctx, role.GenerateRequest{Prompts: reqs})
	if err != nil {
		return role.PrefixCacheUse{}, fmt.Errorf("ppo: generate (turn %d): %w", turn+1, err)
	}
	if len(res.Results) != len(active) {
		return role.PrefixCacheUse{}, fmt.Errorf("ppo: generate (turn %d): %d results for %d episodes", turn+1, len(res.Results), len(active))
	}
	for k, i := range active {
		cs := res.Results[k].Completions
		if len(cs) != 1 || len(cs[0].Tokens) == 0 || len(cs[0].RawLogProbs) != len(cs[0].Tokens) {
			return role.PrefixCacheUse{}, fmt.Errorf("ppo: generate (turn %d): episode %d got %d completions (want 1 with tokens and log-probs)", turn+1, i, len(cs))
		}
		c, e := cs[0], eps[i]
		e.toks = append(e.toks, c.Tokens...)
		for range c.Tokens {
			e.mask = append(e.mask, true)
		}
		e.lp = append(e.lp, c.RawLogProbs...)
		e.action, e.version, e.turns = t.decode(c.Tokens), c.WeightVersion, e.turns+1
		e.posLimit = c.FinishReason == role.FinishLength && len(c.Tokens) < reqs[k].Params.MaxNewTokens
		e.text.WriteString(e.action)
	}
	return res.PrefixCache, nil
}

// step gives the environment the episode's latest action.
func (t *Trainer) step(ctx context.Context, e *episode) error {
	fb, r, done, err := e.env.Step(ctx, e.action)
	if err != nil {
		return fmt.Errorf("ppo: environment %s: turn %d: step: %w", t.cfg.Agent.Env, e.turns, err)
	}
	e.feedback, e.reward, e.done = fb, r, done
	return nil
}

// advance books the step's reward and, unless the episode ends, appends
// the feedback tokens (mask 0) for the next action to read.
func (t *Trainer) advance(e *episode) {
	e.ret += e.reward
	e.rewards = append(e.rewards, e.reward)
	e.text.WriteString(e.feedback)
	if e.done {
		return
	}
	fb := toInt32(tokenizer.EncodeContinuation(t.rt.Tok, e.feedback, t.encodeOpts()))
	if e.turns >= t.cfg.Agent.MaxTurns || e.posLimit || len(e.toks)+len(fb)+1 > t.tokenBudget() {
		e.cut = true
		return
	}
	e.toks = append(e.toks, fb...)
	for range fb {
		e.mask, e.lp = append(e.mask, false), append(e.lp, 0)
	}
}

// episodeRollout lays finished episodes out as a scored rollout.
func (t *Trainer) episodeRollout(eps []*episode, g int) *rollout {
	r := &rollout{g: g, seqs: role.Sequences{ActionMasks: make([][]bool, 0, len(eps))}}
	for _, e := range eps {
		r.prompts = append(r.prompts, e.prompt)
		r.seqs.Tokens = append(r.seqs.Tokens, e.toks)
		r.seqs.PromptLens = append(r.seqs.PromptLens, len(e.prompt.IDs))
		r.seqs.ActionMasks = append(r.seqs.ActionMasks, e.mask)
		r.texts = append(r.texts, e.text.String())
		finish := role.FinishStop
		if !e.done {
			finish = role.FinishLength
		}
		r.finish = append(r.finish, finish)
		r.engineLP = append(r.engineLP, e.lp)
		r.versions = append(r.versions, e.version)
		done := 0.0
		if e.done {
			done = 1
		}
		extra := map[string]float64{"agent_turns": float64(e.turns), "agent_done": done}
		for k, v := range e.rewards[:min(len(e.rewards), turnMetrics)] {
			extra[fmt.Sprintf("agent_reward_turn%d", k+1)] = v
		}
		r.results = append(r.results, grade.Result{Reward: e.ret, Score: e.ret, Extra: extra})
	}
	return r
}

// closeEpisodes closes the environments that hold outside resources
// (env.Closer: a remote server's episodes); a failure is only logged.
func (t *Trainer) closeEpisodes(ctx context.Context, eps []*episode) {
	ctx = context.WithoutCancel(ctx)
	forEach(ctx, allOf(eps), func(i int) error {
		if c, ok := eps[i].env.(env.Closer); ok {
			if err := c.Close(ctx); err != nil {
				t.log.Warn("environment: close", "env", t.cfg.Agent.Env, "err", err)
			}
		}
		return nil
	})
}

// turnSeed is the sampling seed of episode i's turn (splitmix64 of the
// three), so that no two (episode, turn) pairs of a rollout share a stream.
func turnSeed(base uint64, episode, turn int) uint64 {
	z := base ^ uint64(episode)*0x9e3779b97f4a7c15 ^ uint64(turn)*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// running lists the episodes not yet over.
func running(eps []*episode) []int {
	var out []int
	for i, e := range eps {
		if !e.over() {
			out = append(out, i)
		}
	}
	return out
}

func allOf[T any](xs []T) []int { return seq(len(xs)) }

// forEach calls f for every index, at most maxEnvCalls at a time, and
// returns the error of the lowest index that failed (or ctx's error). A
// panic in f (an environment's bug) becomes that index's error.
func forEach(ctx context.Context, idx []int, f func(i int) error) error {
	errs := make([]error, len(idx))
	sem := make(chan struct{}, maxEnvCalls)
	var wg sync.WaitGroup
	for k, i := range idx {
		if err := ctx.Err(); err != nil {
			errs[k] = err
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			defer func() {
				if p := recover(); p != nil {
					errs[k] = fmt.Errorf("ppo: environment panicked: %v", p)
				}
			}()
			errs[k] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
