package ppo

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/env"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// agentConfig is GRPO over multi-turn episodes of the arithmetic
// environment, on the tiny random model: the environment's rewards are
// mostly 0 there, and the tests check the mechanics, not learning.
func agentConfig(t testing.TB, args string, maxTurns int) Config {
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Reward.Rule = grade.RuleConfig{}
	c.Data.LabelKey, c.Data.MaxLen = "label", 160
	c.Rollout.MaxNewTokens = 6
	c.Agent = AgentConfig{Env: "arithmetic", EnvArgs: args, MaxTurns: maxTurns}
	return c
}

// newAgentTrainer is newTrainer with an environment factory of our own
// (nil: the one the configuration names).
func newAgentTrainer(t testing.TB, c Config, e train.Setup, f env.Factory) (*Trainer, *inproc.Roles) {
	t.Helper()
	p, err := inproc.Build(c.RoleSpec(), e, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if p.Reward != nil {
		t.Fatal("a reward role was built although the environment gives the rewards")
	}
	tr, err := New(context.Background(), c, p.Set, Runtime{Tok: e.Tok, Agent: f, MaxPositions: p.MaxPositions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, p
}

// replayEpisode checks row i of a multi-turn rollout against a fresh
// environment: the prompt row is the first observation, every run of
// action tokens is an action the environment is replayed with, every run
// of feedback tokens is the continuation encoding of its answer, and the
// reward is the sum of the step rewards. It returns the actions' tokens.
func replayEpisode(t *testing.T, tok tokenizer.Tokenizer, decode func([]int32) string, fresh env.Env, r *rollout, i int, res grade.Result) [][]int32 {
	t.Helper()
	ctx := context.Background()
	p := r.prompts[i]
	obs, err := fresh.Reset(ctx, strings.TrimSuffix(p.Text, obsSuffix(p.Text)), p.Label)
	if err != nil {
		t.Fatal(err)
	}
	if bos := tok.Specials().BOS; bos < 0 || p.IDs[0] != int32(bos) {
		t.Fatalf("row %d: prompt ids %v do not start with BOS", i, p.IDs)
	}
	if got := tok.Decode(toInts(p.IDs[1:])); obs != p.Text || got != obs {
		t.Fatalf("row %d: prompt %q, ids decode to %q; the environment's observation is %q", i, p.Text, got, obs)
	}
	resp, mask := r.seqs.Response(i), r.seqs.ActionMasks[i]
	var ret float64
	var actions [][]int32
	turns, done := 0, false
	for j := 0; j < len(resp); {
		if !mask[j] {
			t.Fatalf("row %d: feedback token at %d where an action should start", i, j)
		}
		k := j
		for k < len(resp) && mask[k] {
			k++
		}
		actions = append(actions, resp[j:k])
		fb, rew, d, err := fresh.Step(ctx, decode(resp[j:k]))
		if err != nil {
			t.Fatalf("row %d turn %d: %v", i, turns+1, err)
		}
		turns, ret, done = turns+1, ret+rew, d
		j = k
		for k < len(resp) && !mask[k] {
			k++
		}
		want := toInt32(tokenizer.EncodeContinuation(tok, fb, tokenizer.EncodeOptions{}))
		if got := resp[j:k]; k < len(resp) && !slices.Equal(got, want) {
			t.Fatalf("row %d turn %d: feedback tokens %v, want %v (%q)", i, turns, got, want, fb)
		}
		if k == len(resp) && k > j {
			t.Fatalf("row %d: the episode ends with %d feedback tokens", i, k-j)
		}
		j = k
	}
	if math.Abs(ret-res.Reward) > 1e-12 || res.Extra["agent_turns"] != float64(turns) {
		t.Fatalf("row %d: reward %g over %v turns, replay gives %g over %d", i, res.Reward, res.Extra["agent_turns"], ret, turns)
	}
	if done != (r.finish[i] == role.FinishStop) || (res.Extra["agent_done"] == 1) != done {
		t.Fatalf("row %d: finish %s, agent_done %v, but the replayed environment says done=%v", i, r.finish[i], res.Extra["agent_done"], done)
	}
	return actions
}

// obsSuffix is the arithmetic environment's first question in an
// observation ("Q1: …\nA: ").
func obsSuffix(obs string) string { return obs[strings.Index(obs, "Q1: "):] }

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

func TestTrainer_AgentEpisodes(t *testing.T) {
	ctx := context.Background()
	e := tinyEnv(t)
	for _, tc := range []struct {
		name      string
		args      string
		maxTurns  int
		wantTurns int
		done      bool
		stop      []string
	}{
		{"env ends", "steps=3,max=9", 8, 3, true, nil},
		{"max turns cut", "steps=5,max=9", 2, 2, false, nil},
		{"stop strings", "steps=3,max=9", 8, 3, true, []string{"e", "a", "o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := agentConfig(t, tc.args, tc.maxTurns)
			c.Rollout.Stop = tc.stop
			tr, p := newAgentTrainer(t, c, e, nil)
			r, err := tr.sample(ctx, tr.nextPrompts(), tr.samplingParams(), 99)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.seqs.Validate(); err != nil {
				t.Fatal(err)
			}
			if r.seqs.Len() != 16 || r.results == nil || r.seqs.ActionMasks == nil {
				t.Fatalf("%d rows, results %v, masks %v", r.seqs.Len(), r.results != nil, r.seqs.ActionMasks != nil)
			}
			f, err := env.Open("arithmetic", tc.args)
			if err != nil {
				t.Fatal(err)
			}
			stopped := 0
			for i := range r.seqs.Len() {
				actions := replayEpisode(t, e.Tok, tr.decode, f(), r, i, r.results[i])
				if len(actions) != tc.wantTurns {
					t.Fatalf("row %d: %d turns, want %d", i, len(actions), tc.wantTurns)
				}
				// a stop string ends an action: its last token completes it
				for _, a := range actions {
					before, all := tr.decode(a[:len(a)-1]), tr.decode(a)
					for _, s := range tc.stop {
						if strings.Contains(before, s) {
							t.Fatalf("row %d: action %q goes on after the stop string %q", i, all, s)
						}
					}
					if slices.ContainsFunc(tc.stop, func(s string) bool { return strings.Contains(all, s) }) {
						stopped++
					}
				}
				if (r.finish[i] == role.FinishStop) != tc.done {
					t.Fatalf("row %d: finish %s, want done=%v", i, r.finish[i], tc.done)
				}
			}
			if tc.stop != nil && stopped == 0 {
				t.Fatal("no action ended at a stop string")
			}
			// the engine's log-probs are the actor's on action tokens, 0 on
			// feedback tokens
			lp, err := p.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: r.seqs})
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i, row := range r.engineLP {
				for j, v := range row {
					if !r.seqs.ActionMasks[i][j] {
						if v != 0 {
							t.Fatalf("row %d: engine log-prob %g on feedback token %d", i, v, j)
						}
						continue
					}
					worst = math.Max(worst, math.Abs(float64(v-lp.LogProbs[i][j])))
				}
			}
			if worst > 1e-4 {
				t.Fatalf("engine vs actor log-probs on action tokens differ by %g", worst)
			}
			// the samples of a prompt are different episodes
			for g := range r.groups() {
				rows := r.seqs.Tokens[g*r.g : (g+1)*r.g]
				if slices.EqualFunc(rows[0], rows[1], func(a, b int32) bool { return a == b }) {
					t.Fatalf("prompt %d: samples 0 and 1 are the same episode", g)
				}
			}
		})
	}
}

// hashEnv is a two-step environment whose step reward is a hash of the
// action (half the actions earn 0.5): groups then have varied returns for
// dynamic filtering to keep.
type hashEnv struct{ step int }

func (h *hashEnv) Reset(_ context.Context, prompt, _ string) (string, error) {
	h.step = 0
	return prompt, nil // the observation is the prompt itself
}

func (h *hashEnv) Step(_ context.Context, action string) (string, float64, bool, error) {
	h.step++
	f := fnv.New32a()
	f.Write([]byte(action))
	return "\nok.\n", float64(f.Sum32()%2) / 2, h.step == 2, nil
}

func TestTrainer_Step_Agent(t *testing.T) {
	// GRPO with a KL reference and evaluation over multi-turn episodes;
	// then with dynamic filtering and a custom environment.
	ctx := context.Background()
	e := tinyEnv(t)
	c := agentConfig(t, "steps=2,max=9", 4)
	c.Algo.KL.InitCoef = 0.01
	c.Eval.Dataset = writePrompts(t, 4)
	tr, _ := newAgentTrainer(t, c, e, nil)
	for range 2 {
		m, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		finiteAll(t, m, "reward", "kl", "policy_loss", "entropy", "agent_turns", "agent_done_frac", "action_tokens",
			"agent_reward_turn1", "agent_reward_turn2")
		// a step reward is 0 or 1/2; the turns' means add up to the reward
		if r := m["agent_reward_turn1"] + m["agent_reward_turn2"]; math.Abs(r-m["reward"]) > 1e-6 {
			t.Fatalf("turn rewards %g + %g ≠ reward %g", m["agent_reward_turn1"], m["agent_reward_turn2"], m["reward"])
		}
		if m["agent_turns"] < 1 || m["agent_turns"] > 2 || m["action_tokens"] > m["response_length"] {
			t.Fatalf("agent metrics: %v", m)
		}
	}
	ev, err := tr.Evaluate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Turns < 1 || ev.Turns > 2 || math.IsNaN(ev.KL) || len(ev.TurnRewards) != 2 {
		t.Fatalf("eval: %+v", ev)
	}

	// a custom environment (Env.Agent) with dynamic filtering
	c = agentConfig(t, "", 4)
	c.Agent.Env = "hash"
	c.Algo.KL.InitCoef = 0
	c.Algo.DynamicFilter = DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter(), MaxRounds: 3}
	tr, p := newAgentTrainer(t, c, e, func() env.Env { return &hashEnv{} })
	actor0 := snapshot(weights(t, p.Actor))
	m, err := tr.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed(actor0, weights(t, p.Actor)) == 0 {
		t.Fatal("the actor did not change")
	}
	finiteAll(t, m, "dynamic_filtering_rounds", "agent_turns", "policy_loss")
	if m["agent_turns"] != 2 || m["agent_done_frac"] != 1 {
		t.Fatalf("hash environment: %v", m)
	}
}

func TestTrainer_AgentMaskedTokensTrainNothing(t *testing.T) {
	// Two actors from the same weights take one step on the same episodes;
	// one is given huge advantages on the feedback tokens. Masked tokens
	// must not matter: same loss, same weights after the step.
	ctx := context.Background()
	e := tinyEnv(t)
	c := agentConfig(t, "steps=3,max=9", 3)
	c.Algo.KL.InitCoef = 0
	tr, p1 := newAgentTrainer(t, c, e, nil)
	c2 := c
	c2.Ckpt.OutputDir = filepath.Join(t.TempDir(), "second") // one run per folder
	_, p2 := newAgentTrainer(t, c2, tinyEnv(t), nil)
	r, err := tr.sample(ctx, tr.nextPrompts(), tr.samplingParams(), 5)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := p1.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: r.seqs})
	if err != nil {
		t.Fatal(err)
	}
	adv, poisoned := make(role.PerToken, r.seqs.Len()), make(role.PerToken, r.seqs.Len())
	feedback := 0
	for i, m := range r.seqs.ActionMasks {
		adv[i], poisoned[i] = make([]float32, len(m)), make([]float32, len(m))
		for j, a := range m {
			adv[i][j] = float32((i+j)%3) - 1
			poisoned[i][j] = adv[i][j]
			if !a {
				poisoned[i][j], feedback = 1e3, feedback+1
			}
		}
	}
	if feedback == 0 {
		t.Fatal("no feedback tokens in the rollout")
	}
	step := func(a role.Actor, adv role.PerToken) role.ActorStepResult {
		req := role.ActorStep{Loss: rl.ActorLossConfig{Policy: c.Actor.PolicyLoss}, Norm: rl.StepLossNorm(r.seqs.Mask()), LR: 1e-2,
			MicroBatches: []role.ActorMicroBatch{{Seqs: r.seqs, OldLogProbs: lp.LogProbs, Advantages: adv}}}
		res, err := a.TrainStep(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	before := snapshot(weights(t, p1.Actor))
	r1, r2 := step(p1.Actor, adv), step(p2.Actor, poisoned)
	if r1.Loss != r2.Loss || r1.GradNorm != r2.GradNorm || r1.Tokens != r2.Tokens {
		t.Fatalf("feedback-token advantages changed the step: %+v vs %+v", r1, r2)
	}
	if d := maxAbsDiff(snapshot(weights(t, p1.Actor)), weights(t, p2.Actor)); d != 0 {
		t.Fatalf("weights differ by %g after the two steps", d)
	}
	if r1.Skipped || changed(before, weights(t, p1.Actor)) == 0 {
		t.Fatalf("the step changed nothing (skipped %v)", r1.Skipped)
	}
}

func TestConfig_AgentValidate(t *testing.T) {
	c := agentConfig(t, "", 4)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Reward.Rule.Kind = grade.RuleExact }, "gives the rewards"},
		{func(c *Config) { c.Agent.MaxTurns = 0 }, "--agent.max_turns must be ≥ 1"},
		{func(c *Config) { c.Reward.Length.OverlongBufferLen = 2 }, "does not apply to multi-turn"},
		{func(c *Config) { c.Agent.Env = "" }, "set a reward source"},
	} {
		c := agentConfig(t, "", 4)
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	// an unknown environment is an error of New, naming it
	c.Agent.Env = "chess"
	e := tinyEnv(t)
	p, err := inproc.Build(c.RoleSpec(), e, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := New(context.Background(), c, p.Set, Runtime{Tok: e.Tok}); err == nil || !strings.Contains(err.Error(), `unknown environment "chess"`) {
		t.Fatalf("New with --agent.env chess: %v", err)
	}
}

func TestTrainer_Run_ResumeAgent(t *testing.T) {
	// Multi-turn runs keep no state beyond the single-turn loop's: three
	// iterations straight equal two, a stop, a resume and one more.
	base := agentConfig(t, "", 4)
	base.Agent.Env = "hash"
	base.Algo.KL.InitCoef = 0.01
	base.Train.MaxIterations, base.Ckpt.SaveSteps = 3, 1
	hash := func() env.Env { return &hashEnv{} }
	e := tinyEnv(t)

	straight := base
	straight.Ckpt.OutputDir = filepath.Join(t.TempDir(), "straight")
	st, sp := newAgentTrainer(t, straight, e, hash)
	if err := st.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resumed := base
	resumed.Ckpt.OutputDir = filepath.Join(t.TempDir(), "resumed")
	resumed.Train.StopAtStep = 2
	r1, _ := newAgentTrainer(t, resumed, e, hash)
	if err := r1.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("run with stop_at_step 2: %v", err)
	}
	resumed.Train.StopAtStep, resumed.Ckpt.LoadEnable = 0, true
	r2, rp := newAgentTrainer(t, resumed, e, hash)
	if err := r2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(snapshot(weights(t, sp.Actor)), weights(t, rp.Actor)); d != 0 {
		t.Fatalf("actor differs by %g after resume", d)
	}
	last := func(tr *Trainer) map[string]float64 {
		rows := tr.Metrics()
		for i := len(rows) - 1; i >= 0; i-- {
			if rows[i].Split == "train" && rows[i].Step == 3 {
				return rows[i].Values
			}
		}
		t.Fatal("no metrics for iteration 3")
		return nil
	}
	for _, k := range []string{"reward", "policy_loss", "kl", "action_tokens", "response_length"} {
		if last(st)[k] != last(r2)[k] {
			t.Fatalf("iteration 3 %s: %v straight, %v resumed", k, last(st)[k], last(r2)[k])
		}
	}
}

// TestTrainer_Step_AgentPrefixCaching: with --rollout.enable_prefix_caching
// a multi-turn step samples the same episodes (same rewards and lengths:
// tokens do not change) and reports the engine's hit rate; without it the
// metric is absent.
func TestTrainer_Step_AgentPrefixCaching(t *testing.T) {
	ctx := context.Background()
	e := tinyEnv(t)
	steps := map[bool]map[string]float64{}
	for _, cache := range []bool{false, true} {
		c := agentConfig(t, "steps=3,max=9", 4)
		c.Rollout.EnablePrefixCaching = cache
		tr, _ := newAgentTrainer(t, c, e, nil)
		m, err := tr.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		steps[cache] = m
	}
	off, on := steps[false], steps[true]
	if _, ok := off["prefix_cache_hit_rate"]; ok {
		t.Fatal("prefix_cache_hit_rate reported with prefix caching off")
	}
	if h := on["prefix_cache_hit_rate"]; !(h > 0 && h < 1) {
		t.Fatalf("prefix_cache_hit_rate %g, want in (0, 1): later turns extend the earlier ones", h)
	}
	for _, k := range []string{"reward", "response_length", "agent_turns", "action_tokens"} {
		if on[k] != off[k] {
			t.Fatalf("%s: %g with prefix caching, %g without", k, on[k], off[k])
		}
	}
	t.Logf("hit rate %.3f over %g turns", on["prefix_cache_hit_rate"], on["agent_turns"])
}
