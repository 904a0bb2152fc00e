package role

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
)

// Sequences is a batch of token sequences, each a prompt followed by its
// response: the unit every model role works on.
type Sequences struct {
	// Tokens are the B sequences, prompt then response ids.
	Tokens [][]int32
	// PromptLens[i] is the length of sequence i's prompt (≥ 1: something
	// must precede the first response token); the rest is its response
	// (≥ 1 token).
	PromptLens []int
	// ActionMasks[i][j] says whether response token j of sequence i is
	// the policy's own action (scored by the losses). nil means every
	// response token is; a multi-turn transcript marks environment
	// feedback false.
	ActionMasks [][]bool
}

// Len is the number of sequences, B.
func (s Sequences) Len() int { return len(s.Tokens) }

// ResponseLen is the number of response tokens of sequence i.
func (s Sequences) ResponseLen(i int) int { return len(s.Tokens[i]) - s.PromptLens[i] }

// ResponseLens returns every sequence's response length.
func (s Sequences) ResponseLens() []int {
	out := make([]int, s.Len())
	for i := range out {
		out[i] = s.ResponseLen(i)
	}
	return out
}

// Response returns sequence i's response tokens (a view, not a copy).
func (s Sequences) Response(i int) []int32 { return s.Tokens[i][s.PromptLens[i]:] }

// Validate checks the layout: matching lengths, a non-empty prompt and
// response per sequence, and action masks as long as the responses.
func (s Sequences) Validate() error {
	if len(s.PromptLens) != len(s.Tokens) {
		return fmt.Errorf("role: %d prompt lengths for %d sequences", len(s.PromptLens), len(s.Tokens))
	}
	if s.ActionMasks != nil && len(s.ActionMasks) != len(s.Tokens) {
		return fmt.Errorf("role: %d action masks for %d sequences", len(s.ActionMasks), len(s.Tokens))
	}
	for i, toks := range s.Tokens {
		p := s.PromptLens[i]
		if p < 1 || p >= len(toks) {
			return fmt.Errorf("role: sequence %d: prompt length %d leaves no prompt or no response in %d tokens", i, p, len(toks))
		}
		if s.ActionMasks != nil && len(s.ActionMasks[i]) != len(toks)-p {
			return fmt.Errorf("role: sequence %d: action mask has %d entries for %d response tokens", i, len(s.ActionMasks[i]), len(toks)-p)
		}
	}
	return nil
}

// Select returns the sequences idx, in that order (views of the token
// slices).
func (s Sequences) Select(idx []int) Sequences {
	out := Sequences{Tokens: make([][]int32, len(idx)), PromptLens: make([]int, len(idx))}
	if s.ActionMasks != nil {
		out.ActionMasks = make([][]bool, len(idx))
	}
	for k, i := range idx {
		out.Tokens[k], out.PromptLens[k] = s.Tokens[i], s.PromptLens[i]
		if s.ActionMasks != nil {
			out.ActionMasks[k] = s.ActionMasks[i]
		}
	}
	return out
}

// PerToken holds one value per response token of each sequence: B rows of
// R_i values (log-probs, values, advantages, …).
type PerToken [][]float32

// Select returns rows idx (views).
func (p PerToken) Select(idx []int) PerToken {
	if p == nil {
		return nil
	}
	out := make(PerToken, len(idx))
	for k, i := range idx {
		out[k] = p[i]
	}
	return out
}

// checkRows verifies that p has one row per sequence of the right length.
func (p PerToken) checkRows(what string, s Sequences) error {
	if len(p) != s.Len() {
		return fmt.Errorf("role: %s has %d rows for %d sequences", what, len(p), s.Len())
	}
	for i, row := range p {
		if len(row) != s.ResponseLen(i) {
			return fmt.Errorf("role: %s row %d has %d values for %d response tokens", what, i, len(row), s.ResponseLen(i))
		}
	}
	return nil
}

// LogProbsRequest asks for the log-probs of every response token.
type LogProbsRequest struct {
	Seqs Sequences
	Pack bool // packed rows, not padded ones (package doc: Packing)
}

// LogProbsResult holds log π(token | prefix) per response token.
type LogProbsResult struct {
	LogProbs PerToken
}

// ValuesRequest asks the critic for the value of every response token.
type ValuesRequest struct {
	Seqs Sequences
	Pack bool // packed rows, not padded ones (package doc: Packing)
}

// ValuesResult holds V(s_t) per response token.
type ValuesResult struct {
	Values PerToken
}

// ActorMicroBatch is one forward/backward pass of an actor step.
type ActorMicroBatch struct {
	Seqs        Sequences
	OldLogProbs PerToken // log π_old at rollout
	Advantages  PerToken // Â
	RefLogProbs PerToken // log π_ref; only for a KL loss term, else nil
	// ISWeights are the off-policy correction's constant weights of each
	// token's policy loss (rl.ISWeights: π_old against the rollout
	// engine's log-probs); nil = none.
	ISWeights PerToken
}

// Validate checks every per-token field against the sequences.
func (m ActorMicroBatch) Validate() error {
	errs := []error{m.Seqs.Validate()}
	if errs[0] != nil {
		return errs[0]
	}
	errs = append(errs, m.OldLogProbs.checkRows("old log-probs", m.Seqs), m.Advantages.checkRows("advantages", m.Seqs))
	if m.RefLogProbs != nil {
		errs = append(errs, m.RefLogProbs.checkRows("reference log-probs", m.Seqs))
	}
	if m.ISWeights != nil {
		errs = append(errs, m.ISWeights.checkRows("importance weights", m.Seqs))
	}
	return errors.Join(errs...)
}

// ActorStep is one optimizer step of the actor.
type ActorStep struct {
	MicroBatches []ActorMicroBatch
	// Loss says which terms make up the loss; every micro-batch's is
	// rl.ActorObjective's. A KL term needs RefLogProbs in every
	// micro-batch.
	Loss rl.ActorLossConfig
	// Norm holds the step's token and sequence totals (rl.StepLossNorm
	// over every micro-batch's mask), so that the micro-batch losses add
	// up to the loss of the whole step; the role never divides by the
	// number of micro-batches.
	Norm    rl.LossNorm
	LR      float64 // learning rate of this step
	MaxNorm float64 // global gradient-norm clip; 0 = off
	Pack    bool    // packed micro-batches (package doc: Packing)
}

// ActorStepResult describes one actor step. Loss terms are the step's
// totals; ratios and fractions are means over its action tokens.
type ActorStepResult struct {
	Loss       float64 // everything that was back-propagated
	PolicyLoss float64
	KLLoss     float64 // the KL term before β; 0 without one
	Entropy    float64 // mean per-token entropy of the policy
	ClipFrac   float64
	DualClip   float64 // share of tokens where the dual-clip bound is active
	ApproxKL   float64 // mean log π_old − log π (OpenRLHF ppo_kl)
	RatioMean  float64
	RatioMax   float64
	GradNorm   float64 // before clipping
	Skipped    bool    // non-finite loss or gradient: no update applied
	Tokens     int     // action tokens in the step
}

// CriticMicroBatch is one forward/backward pass of a critic step.
type CriticMicroBatch struct {
	Seqs      Sequences
	OldValues PerToken // V at rollout, the centre of value clipping
	Returns   PerToken // regression targets
}

// Validate checks every per-token field against the sequences.
func (m CriticMicroBatch) Validate() error {
	if err := m.Seqs.Validate(); err != nil {
		return err
	}
	return errors.Join(m.OldValues.checkRows("old values", m.Seqs), m.Returns.checkRows("returns", m.Seqs))
}

// CriticStep is one optimizer step of the critic.
type CriticStep struct {
	MicroBatches []CriticMicroBatch
	Loss         rl.ValueLossConfig
	Norm         rl.LossNorm // see ActorStep.Norm
	LR           float64
	MaxNorm      float64
	Pack         bool // packed micro-batches (package doc: Packing)
}

// CriticStepResult describes one critic step.
type CriticStepResult struct {
	Loss      float64
	ClipFrac  float64
	ValueMean float64
	GradNorm  float64
	Skipped   bool
	Tokens    int
}

// ScoreRequest asks for the rewards of finished rollouts.
type ScoreRequest struct {
	Samples []grade.Sample
}

// ScoreResult holds one result per sample, in order.
type ScoreResult struct {
	Results []grade.Result
}

// SaveRequest asks a trainable role for a checkpoint.
type SaveRequest struct {
	Root  string          // the role's checkpoint folder (e.g. <ckpt>/_actor)
	Step  int             // the driver's step; the folder is named after it
	Keep  int             // checkpoints kept under Root, newest first
	State json.RawMessage // the driver's state, stored with the weights
}

// SaveResult names the folder written.
type SaveResult struct {
	Dir string
}

// LoadRequest names a checkpoint folder to restore.
type LoadRequest struct {
	Dir string
}

// LoadResult returns what was saved with the checkpoint.
type LoadResult struct {
	Step  int
	State json.RawMessage
}

// ExportRequest asks for the final model folder.
type ExportRequest struct {
	Dir string
}
