package role

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// Spec says which roles to build and with which settings, as plain data
// that encodes to JSON: what a driver hands to whatever builds its roles,
// in this process (role/inproc.Build) or in a worker that hosts some of
// them. trainer/ppo's Config.RoleSpec makes one from a run's flags.
//
// The models are not in it: the actor's model comes with the builder's
// call, and the critic and reward models are named by reference (a
// folder, a Hub id), for the builder to load.
type Spec struct {
	// ForwardBatch bounds the sequences of one inference pass of the
	// actor, critic and reference (--rollout.micro_batch_size); 0 = all.
	ForwardBatch int
	// Seed draws what the builder initialises at random: a critic's fresh
	// value head.
	Seed  uint64
	Actor ActorSpec
	// Reference builds the frozen initial policy (a KL penalty needs it).
	// The actor then trains a copy of the weights the reference reads.
	Reference bool
	// Critic builds the value model; nil means none (only gae needs one).
	Critic *CriticSpec
	// Reward builds the reward role; nil means none (an environment gives
	// the rewards).
	Reward  *RewardSpec
	Rollout RolloutSpec
	// ZeroStage is the ZeRO stage (--ds.zero_stage, 0–3) of the actor
	// and the critic when they train data-parallel over several ranks
	// (or, above 0, through the sharding engine in one process).
	ZeroStage int `json:",omitempty"`
	// LoRA, when set, trains the actor and the critic through low-rank
	// adapters on a frozen base (--ds.lora.*, package lora); the actor's
	// weights then reach the rollout as the adapters alone, which the
	// rollout merges into its base. nil: full fine-tuning.
	LoRA *LoRASpec `json:",omitempty"`
}

// LoRASpec is lora.Config as plain data (this package knows no model).
type LoRASpec struct {
	Rank          int
	Alpha         float64
	Dropout       float64
	TargetModules string
}

// Adam holds AdamW's hyper-parameters; it has optim.Config's fields, in
// its order, so the builder converts it with optim.Config(a).
type Adam struct {
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
}

// ActorSpec configures the policy being trained.
type ActorSpec struct {
	Adam Adam
	// MaxNorm is the gradient-norm clip every step asks for
	// (ActorStep.MaxNorm): a data-parallel actor's engine is built with
	// it and refuses steps that ask for another.
	MaxNorm float64 `json:",omitempty"`
	// GradientCheckpointing recomputes the actor's transformer block
	// activations in its backward pass instead of keeping them (the
	// reference and the rollout engine never do).
	GradientCheckpointing bool
}

// CriticSpec configures the value model.
type CriticSpec struct {
	// Model is a reward model or a causal LM (which gets a fresh value
	// head); "" means the reward model when one is a reward source, else
	// the actor's backbone with a fresh head.
	Model string
	Adam  Adam
	// MaxNorm is the critic's ActorSpec.MaxNorm.
	MaxNorm float64 `json:",omitempty"`
	// GradientCheckpointing recomputes the critic's transformer block
	// activations in its backward pass instead of keeping them.
	GradientCheckpointing bool
}

// Reward part names: the keys of RewardSpec.Mix and ScoreFrom, and of the
// per-part rewards a mix reports.
const (
	PartModel  = "model"
	PartRemote = "remote"
	PartRule   = "rule"
)

// RewardSpec says where rewards come from: any of Rule, RemoteURLs and
// Model; with more than one, their weighted sum.
type RewardSpec struct {
	Rule       grade.RuleConfig // a built-in grader; Kind "" = none
	RemoteURLs []string         // OpenRLHF-protocol reward servers
	Model      string           // a reward model folder; "" = none
	// Normalize reports reward-model scores as (r − mean)/std with the
	// statistics stored in its config.json.
	Normalize bool
	BatchSize int // sequences per reward-model forward pass; 0 = the source's default (16)
	MaxLen    int // token budget of a sequence the reward model scores
	// PRMAggregation is how a process reward model's step scores become
	// the reward (min, prod, mean, last; "" = min); Model is a PRM when
	// its folder holds prm.json.
	PRMAggregation string
	// Mix weighs the parts by name (PartModel, PartRemote, PartRule); a
	// part not listed weighs 1.
	Mix map[string]float64
	// ScoreFrom names the part whose score is the sample's score (what
	// dynamic filtering compares); "" means the weighted sum.
	ScoreFrom string
}

// Parts lists the names of the sources set, in the order they are built
// and mixed.
func (r RewardSpec) Parts() []string {
	var out []string
	if r.Rule.Kind != "" {
		out = append(out, PartRule)
	}
	if len(r.RemoteURLs) > 0 {
		out = append(out, PartRemote)
	}
	if r.Model != "" {
		out = append(out, PartModel)
	}
	return out
}

// RolloutSpec configures the rollout engine.
type RolloutSpec struct {
	KVCacheMB int // the engine's KV-cache budget; 0 = its default
	// PrefixCaching turns on the engine's prefix caching across calls
	// (generate.Config.PrefixCaching).
	PrefixCaching bool
	// DType is the format the engine reads weight matrices in
	// (generate.Config.DType): "" or "f32", "bf16", "f16".
	DType string
}

// Validate checks what can be checked without building anything.
func (s Spec) Validate() error {
	var errs []error
	if s.ForwardBatch < 0 || s.Rollout.KVCacheMB < 0 {
		errs = append(errs, fmt.Errorf("role: spec: forward batch %d and KV cache %d MB must be ≥ 0", s.ForwardBatch, s.Rollout.KVCacheMB))
	}
	if s.ZeroStage < 0 || s.ZeroStage > 3 {
		errs = append(errs, fmt.Errorf("role: spec: ZeRO stage (--ds.zero_stage) must be 0, 1, 2 or 3, got %d", s.ZeroStage))
	}
	if s.Reward != nil {
		errs = append(errs, s.Reward.validate())
	}
	return errors.Join(errs...)
}

func (r RewardSpec) validate() error {
	parts := r.Parts()
	set := strings.Join(parts, ", ")
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("role: spec: reward: "+format, args...))
	}
	if len(parts) == 0 {
		add("no source set (a rule, remote URLs or a model)")
	}
	if r.Rule.Kind != "" {
		errs = append(errs, r.Rule.Validate())
	}
	for _, name := range slices.Sorted(maps.Keys(r.Mix)) {
		if !slices.Contains(parts, name) {
			add("mix weighs %q, not a source that is set (set: %s)", name, set)
		}
	}
	if r.ScoreFrom != "" && !slices.Contains(parts, r.ScoreFrom) {
		add("score_from %q is not a source that is set (set: %s)", r.ScoreFrom, set)
	}
	if r.BatchSize < 0 || (r.Model != "" && r.MaxLen < 2) {
		add("batch size %d must be ≥ 0 and max len %d ≥ 2", r.BatchSize, r.MaxLen)
	}
	return errors.Join(errs...)
}
