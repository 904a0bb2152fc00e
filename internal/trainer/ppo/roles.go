package ppo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Loader loads a model reference (a folder, a llama2.c file, a Hub id in
// the local cache, or stories260K); the command line passes one that
// knows where the Hub cache is.
type Loader func(ref string) (*load.Loaded, error)

// InProc is a run's roles in this process and the engine they own.
type InProc struct {
	Roles
	engine *generate.Engine
}

// MaxPositions is the policy's position limit (0 = none), for Env.
func (p *InProc) MaxPositions() int { return p.engine.MaxPositions() }

// Close stops the rollout engine.
func (p *InProc) Close() error { return p.engine.Close() }

// NewInProc builds, in this process, the roles cfg needs, from env (the
// loaded actor model, its tokenizer and files) and load (for reward and
// critic models). Weights are placed like this:
//
//   - reference (only with a KL penalty): env.Model itself, frozen; it can
//     share the loaded weights because the actor trains a Clone
//   - actor: a Clone of env.Model (env.Model itself when there is no reference)
//   - rollout: a generate engine over its own Clone, stopping at env.StopIDs
//   - reward: a rule grader, remote servers, or a reward model; none
//     when an environment gives the rewards (--agent.env)
//   - critic (gae only): critic.model_name_or_path; else a Clone of the
//     reward model (which keeps scoring with the original); else the
//     actor's backbone with a fresh value head
func NewInProc(cfg Config, env train.Setup, load Loader) (*InProc, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := env.Loaded
	if base == nil || base.Score != nil {
		return nil, errors.New("ppo: the actor must be a causal LM (not a reward model)")
	}
	fb := cfg.Rollout.MicroBatchSize
	p := &InProc{}
	actorModel := base.Model
	if cfg.NeedsReference() {
		p.Reference = inproc.NewReference(base.Model, fb)
		var err error
		if actorModel, err = inproc.Clone(base.Model); err != nil {
			return nil, err
		}
	}
	actor, err := inproc.NewActor(train.Model{Module: actorModel, Config: base.Config, Files: env.TokenizerFiles}, cfg.Actor.Optim.Adam, fb)
	if err != nil {
		return nil, err
	}
	p.Actor = actor
	rm, err := p.buildReward(cfg, env, load)
	if err != nil {
		return nil, err
	}
	if cfg.NeedsCritic() {
		if p.Critic, err = buildCritic(cfg, env, load, rm); err != nil {
			return nil, err
		}
	}
	if p.engine, err = newEngine(cfg, base.Model, env.Bundle); err != nil {
		return nil, err
	}
	p.Rollout = inproc.NewRollout(p.engine)
	return p, nil
}

// newEngine starts a rollout engine over a Clone of m, stopping at the
// bundle's StopIDs.
func newEngine(cfg Config, m model.CausalLM, b *load.Bundle) (*generate.Engine, error) {
	c, err := inproc.Clone(m)
	if err != nil {
		return nil, err
	}
	dec, ok := c.(model.Decoder)
	if !ok {
		return nil, fmt.Errorf("ppo: a %T cannot generate", c)
	}
	gc := generate.DefaultConfig()
	if cfg.Rollout.KVCacheMB > 0 {
		gc.KVCacheMB = cfg.Rollout.KVCacheMB
	}
	gc.EOS = b.StopIDs
	return generate.New(dec, b.Tok, gc)
}

// buildReward makes the reward role from the sources set (their weighted
// mix when there are several); it returns the reward model when one is a
// source (a critic may start from it).
func (p *InProc) buildReward(cfg Config, env train.Setup, ld Loader) (*load.Loaded, error) {
	rc := cfg.Reward
	if rc.sources() == 0 && cfg.Agent.Enabled() {
		return nil, nil // the environment gives the rewards
	}
	var parts []reward.Part
	var rm *load.Loaded
	for _, name := range rc.parts() {
		var src reward.Source
		var err error
		switch name {
		case PartRule:
			src, err = reward.NewRule(rc.Rule)
		case PartRemote:
			c := reward.DefaultRemoteConfig()
			c.URLs = rc.RemoteURLs
			src, err = reward.NewRemote(c)
		case PartModel:
			rm, src, err = rewardModel(cfg, env, ld)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, reward.Part{Name: name, Weight: 1, Source: src})
	}
	src, err := mixParts(rc, parts)
	if err != nil {
		return nil, err
	}
	p.Reward = inproc.NewReward(src)
	return rm, nil
}

// mixParts returns the one source, or their weighted mix (RewardConfig.Mix).
func mixParts(rc RewardConfig, parts []reward.Part) (reward.Source, error) {
	if len(parts) == 1 && len(rc.Mix) == 0 && rc.ScoreFrom == "" {
		return parts[0].Source, nil
	}
	for i := range parts {
		for _, w := range rc.Mix {
			if w.Name == parts[i].Name {
				parts[i].Weight = w.Weight
			}
		}
	}
	return reward.NewMix(rc.ScoreFrom, parts...)
}

// rewardModel loads the reward model source.
func rewardModel(cfg Config, env train.Setup, load Loader) (*load.Loaded, reward.Source, error) {
	rc := cfg.Reward
	l, err := load(rc.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("ppo: reward model: %w", err)
	}
	if l.Score == nil {
		return nil, nil, fmt.Errorf("ppo: reward model %s is a %s, not a *ForSequenceClassification model", rc.Model, l.Arch)
	}
	tok, err := tokenizer.Load(l.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("ppo: reward model tokenizer: %w", err)
	}
	mc := reward.DefaultModelConfig()
	mc.Model, mc.Tok, mc.MaxLen, mc.Normalize = l.Score, tok, cfg.Data.MaxLen+1, rc.Normalize
	if rc.BatchSize > 0 {
		mc.BatchSize = rc.BatchSize
	}
	src, err := reward.NewModelSource(mc)
	if err != nil {
		return nil, nil, err
	}
	if !sameTokenizer(tok, env.Tok) {
		return l, textOnly{src}, nil // its own tokenizer must re-encode the text
	}
	return l, src, nil
}

// buildCritic makes the critic (see NewInProc for where it starts from).
func buildCritic(cfg Config, env train.Setup, load Loader, rm *load.Loaded) (*inproc.Critic, error) {
	var sm *head.ScoreModel
	var cfgJSON []byte
	var files map[string][]byte
	switch {
	case cfg.Critic.Model != "":
		l, err := load(cfg.Critic.Model)
		if err != nil {
			return nil, fmt.Errorf("ppo: critic: %w", err)
		}
		if sm, cfgJSON, err = valueModel(l, l.Model, cfg.Train.Seed); err != nil {
			return nil, err
		}
	case rm != nil:
		c, err := inproc.Clone(rm.Score)
		if err != nil {
			return nil, err
		}
		sm, cfgJSON = c.(*head.ScoreModel), rm.Config
	default:
		bb, err := inproc.Clone(env.Model)
		if err != nil {
			return nil, err
		}
		if sm, cfgJSON, err = valueModel(env.Loaded, bb, cfg.Train.Seed); err != nil {
			return nil, err
		}
		files = env.TokenizerFiles
	}
	return inproc.NewCritic(sm, cfgJSON, files, cfg.Critic.Optim.Adam, cfg.Rollout.MicroBatchSize)
}

// valueModel returns l's score model, or backbone (l's architecture) with
// a fresh head drawn from seed (OpenRLHF initialises the value head with
// std 1/(C+1)), and the config.json to save it with.
func valueModel(l *load.Loaded, backbone model.CausalLM, seed uint64) (*head.ScoreModel, []byte, error) {
	return load.ScoreModel(l, backbone, rand.New(rand.NewPCG(seed, 0xc41c)))
}

// sameTokenizer reports whether two tokenizers agree on a probe text and
// on their vocabulary size: then the policy's token ids can be scored as
// they are.
func sameTokenizer(a, b tokenizer.Tokenizer) bool {
	const probe = "Once upon a time, 12 + 30 = 42. The End!"
	if a.VocabSize() != b.VocabSize() || a.Specials() != b.Specials() {
		return false
	}
	x, y := a.Encode(probe), b.Encode(probe)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// textOnly drops the policy's token ids so that a reward model with
// another tokenizer scores the text.
type textOnly struct{ src reward.Source }

func (s textOnly) Score(ctx context.Context, samples []reward.Sample) ([]reward.Result, error) {
	out := make([]reward.Sample, len(samples))
	for i, x := range samples {
		x.Tokens = nil
		out[i] = x
	}
	return s.src.Score(ctx, out)
}
