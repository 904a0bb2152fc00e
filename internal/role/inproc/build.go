package inproc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/reward/rmodel"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Loader loads a model reference (a folder, a llama2.c file, a Hub id in
// the local cache, or stories260K); the command line passes one that
// knows where the Hub cache is.
type Loader func(ref string) (*load.Loaded, error)

// Roles are a run's roles built in this process, and the rollout engine
// they own.
type Roles struct {
	role.Set
	engine *generate.Engine
}

// MaxPositions is the policy's position limit (0 = none), for the
// driver's runtime (ppo.Runtime); 0 when no rollout engine was built here.
func (r *Roles) MaxPositions() int {
	if r.engine == nil {
		return 0
	}
	return r.engine.MaxPositions()
}

// Close stops the rollout engine, if one was built here.
func (r *Roles) Close() error {
	if r.engine == nil {
		return nil
	}
	return r.engine.Close()
}

// Build makes, in this process, the roles spec asks for, from actor (the
// actor's model bundle: its model, tokenizer, files and stop ids) and open (for reward and
// critic models; it may be nil when spec names none). Weights are placed
// like this:
//
//   - reference (spec.Reference): actor.Model itself, frozen; it can
//     share the loaded weights because the actor trains a Clone
//   - actor: a Clone of actor.Model (actor.Model itself when there is no reference)
//   - rollout: a generate engine over its own Clone, stopping at the
//     bundle's StopIDs
//   - reward: a rule grader, remote servers, or a reward model, or their
//     mix; none when spec.Reward is nil (an environment gives the rewards)
//   - critic (spec.Critic): its Model; else a Clone of the reward model
//     (which keeps scoring with the original); else the actor's backbone
//     with a fresh value head
//
// The actor and the critic recompute their block activations in the
// backward pass when the spec asks (GradientCheckpointing); the
// reference and the rollout engine run no backward pass and never do.
func Build(spec role.Spec, actor train.Setup, open Loader) (*Roles, error) {
	return BuildSome(spec, actor, open, AllRoles())
}

// Want selects the roles BuildSome makes: a worker process builds the
// ones its placement group hosts. A role the spec does not ask for
// (Reference, Critic, Reward) is not built even when wanted.
type Want struct {
	Actor, Reference, Critic, Reward, Rollout bool
	// ActorComm and CriticComm make the actor and the critic built here
	// one rank of a data-parallel group (NewActorRank, NewCriticRank);
	// nil: each trains in this process alone. Every rank of a group
	// builds at the same time (the engine checks the replicas agree),
	// from its own Setup.
	ActorComm, CriticComm collective.Comm
}

// AllRoles wants every role the spec asks for.
func AllRoles() Want {
	return Want{Actor: true, Reference: true, Critic: true, Reward: true, Rollout: true}
}

// BuildSome is Build for the roles want selects. Each role starts from
// the same weights whichever process builds it (a role built alone loads
// what Build would have shared or cloned), so a run whose roles are
// spread over processes computes what the in-process run computes.
//
// The actor is built last: without a reference it trains the bundle's
// model itself, which a ZeRO stage-3 engine releases (every other role
// copies it first).
func BuildSome(spec role.Spec, actor train.Setup, open Loader, want Want) (*Roles, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if actor.Bundle == nil || actor.Loaded == nil || actor.Score != nil {
		return nil, errors.New("inproc: the actor must be a causal LM (not a reward model)")
	}
	base := actor.Loaded
	r := &Roles{}
	if spec.Reference && want.Reference {
		r.Reference = NewReference(base.Model, spec.ForwardBatch)
	}
	var rm *load.Loaded
	var err error
	if want.Reward {
		if rm, err = r.buildReward(spec, actor, open); err != nil {
			return nil, err
		}
	}
	if spec.Critic != nil && want.Critic {
		if rm == nil && spec.Critic.Model == "" && spec.Reward != nil && spec.Reward.Model != "" {
			if rm, err = criticFromReward(spec.Reward.Model, open); err != nil { // the critic starts from it
				return nil, err
			}
		}
		if r.Critic, err = buildCritic(spec, actor, open, rm, want.CriticComm); err != nil {
			return nil, err
		}
	}
	if want.Rollout {
		if r.engine, err = newEngine(spec.Rollout, base.Model, actor.Bundle); err != nil {
			return nil, err
		}
		rollout := NewRollout(r.engine)
		if l := spec.LoRA; l != nil { // the actor syncs adapters; merge them into the base it started from
			rollout.base, rollout.scale = base.Model, float32(l.Alpha/float64(l.Rank))
		}
		r.Rollout = rollout
	}
	if want.Actor {
		if r.Actor, err = buildActor(spec, actor, want.Reference, want.ActorComm); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// buildActor makes the actor: it trains a Clone of the bundle's model
// when the reference reads the model itself, else the model.
func buildActor(spec role.Spec, actor train.Setup, reference bool, comm collective.Comm) (*Actor, error) {
	base := actor.Loaded
	m := base.Model
	if spec.Reference && reference {
		var err error
		if m, err = Clone(base.Model); err != nil {
			return nil, err
		}
	}
	if spec.Actor.GradientCheckpointing {
		if err := model.UseRecompute(m); err != nil {
			return nil, fmt.Errorf("inproc: actor: %w", err)
		}
	}
	oc := train.OptimizerConfig{Adam: optim.Config(spec.Actor.Adam), MaxNorm: spec.Actor.MaxNorm, ZeroStage: spec.ZeroStage,
		Recompute: spec.Actor.GradientCheckpointing}
	tm := train.Model{Module: m, Config: base.Config, Files: actor.TokenizerFiles}
	if err := adapt(&tm, spec, base.Path); err != nil {
		return nil, fmt.Errorf("inproc: actor: %w", err)
	}
	return NewActorRank(comm, tm, oc, spec.ForwardBatch)
}

// adapt attaches spec's LoRA adapters (when it asks for them) to m's
// module, seeded by spec.Seed, with the modules in save trained whole;
// the model is then saved as a PEFT adapter folder naming baseRef.
func adapt(m *train.Model, spec role.Spec, baseRef string, save ...string) error {
	l := spec.LoRA
	if l == nil {
		return nil
	}
	a, err := lora.Attach(m.Module, lora.Config{Rank: l.Rank, Alpha: l.Alpha, Dropout: l.Dropout, TargetModules: l.TargetModules}, spec.Seed, save...)
	if err != nil {
		return err
	}
	m.Adapters, m.Base = a, baseRef
	return nil
}

// newEngine starts a rollout engine over a Clone of m, stopping at the
// bundle's StopIDs.
func newEngine(rs role.RolloutSpec, m model.CausalLM, b *load.Bundle) (*generate.Engine, error) {
	c, err := Clone(m)
	if err != nil {
		return nil, err
	}
	dec, ok := c.(model.Decoder)
	if !ok {
		return nil, fmt.Errorf("inproc: a %T cannot generate", c)
	}
	gc := generate.DefaultConfig()
	if rs.KVCacheMB > 0 {
		gc.KVCacheMB = rs.KVCacheMB
	}
	gc.PrefixCaching = rs.PrefixCaching
	if gc.DType, err = half.ParseDType(rs.DType); err != nil {
		return nil, fmt.Errorf("inproc: rollout: %w", err)
	}
	gc.EOS = b.StopIDs
	return generate.New(dec, b.Tok, gc)
}

// buildReward makes the reward role from the sources set (their weighted
// mix when there are several); it returns the reward model when one is a
// source (a critic may start from it).
func (r *Roles) buildReward(spec role.Spec, actor train.Setup, open Loader) (*load.Loaded, error) {
	rs := spec.Reward
	if rs == nil {
		return nil, nil // the environment gives the rewards
	}
	var parts []reward.Part
	var rm *load.Loaded
	for _, name := range rs.Parts() {
		var src reward.Source
		var err error
		switch name {
		case role.PartRule:
			src, err = grade.NewRule(rs.Rule)
		case role.PartRemote:
			c := reward.DefaultRemoteConfig()
			c.URLs = rs.RemoteURLs
			src, err = reward.NewRemote(c)
		case role.PartModel:
			rm, src, err = rewardModel(*rs, actor, open)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, reward.Part{Name: name, Weight: 1, Source: src})
	}
	src, err := mixParts(*rs, parts)
	if err != nil {
		return nil, err
	}
	r.Reward = NewReward(src)
	return rm, nil
}

// mixParts returns the one source, or their weighted mix (RewardSpec.Mix).
func mixParts(rs role.RewardSpec, parts []reward.Part) (reward.Source, error) {
	if len(parts) == 1 && len(rs.Mix) == 0 && rs.ScoreFrom == "" {
		return parts[0].Source, nil
	}
	for i := range parts {
		if w, ok := rs.Mix[parts[i].Name]; ok {
			parts[i].Weight = w
		}
	}
	return reward.NewMix(rs.ScoreFrom, parts...)
}

// rewardModel loads the reward model source.
func rewardModel(rs role.RewardSpec, actor train.Setup, open Loader) (*load.Loaded, reward.Source, error) {
	if open == nil {
		return nil, nil, errors.New("inproc: reward model: no loader")
	}
	l, err := openRewardModel(rs.Model, open)
	if err != nil {
		return nil, nil, err
	}
	if l.Score == nil {
		src, err := processRewardModel(rs, l)
		return nil, src, err // a critic does not start from a PRM
	}
	tok, err := tokenizer.Load(l.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("inproc: reward model tokenizer: %w", err)
	}
	mc := rmodel.DefaultConfig()
	mc.Model, mc.Tok, mc.MaxLen, mc.Normalize = l.Score, tok, rs.MaxLen, rs.Normalize
	if rs.BatchSize > 0 {
		mc.BatchSize = rs.BatchSize
	}
	src, err := rmodel.New(mc)
	if err != nil {
		return nil, nil, err
	}
	if !sameTokenizer(tok, actor.Tok) {
		return l, textOnly{src}, nil // its own tokenizer must re-encode the text
	}
	return l, src, nil
}

// openRewardModel loads ref and checks it is a reward model: a
// *ForSequenceClassification model, or a process reward model (a causal
// LM whose folder holds prm.json).
func openRewardModel(ref string, open Loader) (*load.Loaded, error) {
	if open == nil {
		return nil, errors.New("inproc: reward model: no loader")
	}
	l, err := open(ref)
	if err != nil {
		return nil, fmt.Errorf("inproc: reward model: %w", err)
	}
	if l.Score == nil && !prmodel.IsPRM(l.Path) {
		return nil, fmt.Errorf("inproc: reward model %s is a %s, not a *ForSequenceClassification model (nor a process reward model with %s)", ref, l.Arch, prmodel.SpecFile)
	}
	return l, nil
}

// criticFromReward is the reward model a critic starts from: ref's, or
// nil when ref is a process reward model (the critic then starts from the
// actor).
func criticFromReward(ref string, open Loader) (*load.Loaded, error) {
	l, err := openRewardModel(ref, open)
	if err != nil || l.Score == nil {
		return nil, err
	}
	return l, nil
}

// processRewardModel is the reward source of a process reward model
// (package prmodel), with its own tokenizer: it re-encodes the text with
// the steps tagged.
func processRewardModel(rs role.RewardSpec, l *load.Loaded) (reward.Source, error) {
	if rs.Normalize {
		return nil, fmt.Errorf("inproc: %s is a process reward model: its rewards are probabilities with no stored mean and std to normalise with (drop --reward.normalize_enable)", l.Path)
	}
	spec, err := prmodel.ReadSpec(l.Path)
	if err != nil {
		return nil, fmt.Errorf("inproc: process reward model: %w", err)
	}
	tok, err := tokenizer.Load(l.Path)
	if err != nil {
		return nil, fmt.Errorf("inproc: process reward model tokenizer: %w", err)
	}
	c := prmodel.DefaultConfig()
	c.Model, c.Tok, c.Spec, c.MaxLen = l.Model, tok, spec, rs.MaxLen
	if rs.PRMAggregation != "" {
		c.Aggregation = prmodel.Aggregation(rs.PRMAggregation)
	}
	if rs.BatchSize > 0 {
		c.BatchSize = rs.BatchSize
	}
	if c.MaxLen < 2 {
		c.MaxLen = prmodel.DefaultConfig().MaxLen
	}
	src, err := prmodel.New(c)
	if err != nil {
		return nil, fmt.Errorf("inproc: %s: %w", l.Path, err)
	}
	return src, nil
}

// buildCritic makes the critic (see Build for where it starts from).
func buildCritic(spec role.Spec, actor train.Setup, open Loader, rm *load.Loaded, comm collective.Comm) (*Critic, error) {
	var sm *head.ScoreModel
	var cfgJSON []byte
	var files map[string][]byte
	switch {
	case spec.Critic.Model != "":
		if open == nil {
			return nil, errors.New("inproc: critic: no loader")
		}
		l, err := open(spec.Critic.Model)
		if err != nil {
			return nil, fmt.Errorf("inproc: critic: %w", err)
		}
		if sm, cfgJSON, err = valueModel(l, l.Model, spec.Seed); err != nil {
			return nil, err
		}
	case rm != nil:
		c, err := Clone(rm.Score)
		if err != nil {
			return nil, err
		}
		sm, cfgJSON = c.(*head.ScoreModel), rm.Config
	default:
		bb, err := Clone(actor.Model)
		if err != nil {
			return nil, err
		}
		if sm, cfgJSON, err = valueModel(actor.Loaded, bb, spec.Seed); err != nil {
			return nil, err
		}
		files = actor.TokenizerFiles
	}
	if spec.Critic.GradientCheckpointing {
		sm.SetBlockRunner(model.Recompute{})
	}
	oc := train.OptimizerConfig{Adam: optim.Config(spec.Critic.Adam), MaxNorm: spec.Critic.MaxNorm, ZeroStage: spec.ZeroStage,
		Recompute: spec.Critic.GradientCheckpointing}
	tm := train.Model{Module: sm, Config: cfgJSON, Files: files}
	baseRef := spec.Critic.Model
	if baseRef == "" {
		baseRef = actor.Loaded.Path
	}
	if err := adapt(&tm, spec, baseRef, "score"); err != nil {
		return nil, fmt.Errorf("inproc: critic: %w", err)
	}
	return newCritic(comm, tm, oc, spec.ForwardBatch)
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

func (s textOnly) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	out := make([]grade.Sample, len(samples))
	for i, x := range samples {
		x.Tokens = nil
		out[i] = x
	}
	return s.src.Score(ctx, out)
}
