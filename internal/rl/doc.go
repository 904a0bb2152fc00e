// Package rl is gorlhf's reinforcement-learning math: advantage estimators,
// KL estimators and controllers, reward processing, and the PPO-family
// policy and value losses. Every function is pure (no hidden state) and its
// doc comment carries the formula and the paper it comes from, so that a
// trainer reads as a sequence of named steps and the math can be tested on
// its own.
//
// Semantics follow OpenRLHF v0.11 (models/loss.py, models/utils.py,
// trainer/ppo_utils/experience_maker.py, kl_controller.py,
// length_penalty.py) unless a doc comment states a different choice; the
// tests compare against a PyTorch transcription of those formulas
// (tools/rl_golden.py → testdata/rl_golden.json).
//
// # Shapes
//
// B batch (sequences), A action (response) tokens, G samples per prompt.
// Per-token quantities are *tensor.Tensor of shape [B, A] (right-padded
// responses); the action mask [B, A] is 1 on response tokens that are
// scored and 0 on padding. Per-sequence quantities are []float32 of length
// B, and the G samples of one prompt are contiguous rows: prompt p owns rows
// p·G … p·G+G−1.
//
// # Pipeline of one rollout batch
//
//  1. Scalar reward per sequence: reward model score at the last token
//     (RewardNorm), verifier, remote server; then LengthPenalty.
//  2. Group baseline over the G samples of each prompt (GroupBaseline).
//  3. Per-token rewards: clip, −β·KL_t on every token, plus the scalar at
//     the last valid token (ShapeRewards).
//  4. GAE with the critic's values, or discounted returns (DiscountedReturns).
//  5. Global whitening over all valid tokens of the batch (Whiten), for
//     gae, reinforce and reinforce_baseline.
//
// ComputeAdvantages runs steps 2–5 in that order. The losses (PolicyLoss,
// ValueLoss, KLLoss, EntropyBonus) are built from tensor ops on a
// *tensor.Tape, so gradients reach the policy's log-probs and the critic's
// values; Aggregate reduces their per-token terms to a scalar.
// ActorObjective composes the actor's whole loss (surrogate, KL term,
// entropy bonus) so that every actor implementation optimises the same one.
// ISWeights and LogProbMismatch (offpolicy.go) compare the trainer's
// π_old with the rollout engine's log-probs: the truncated importance
// weights that correct an off-policy rollout in PolicyLoss, and the
// mismatch metrics (tools/tis_golden.py → testdata/tis_golden.json).
package rl
