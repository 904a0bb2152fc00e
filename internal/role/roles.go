package role

import "context"

// Rollout produces completions with the current policy version. Safe for
// concurrent use.
type Rollout interface {
	// Generate completes every request (N samples each) and returns the
	// results in request order; each completion reports the weight
	// version that produced it.
	Generate(ctx context.Context, req GenerateRequest) (GenerateResult, error)
	// LoadWeights replaces the policy. Requests started before it finish
	// on the old version; later ones run on w.Version.
	LoadWeights(ctx context.Context, w Weights) error
}

// LogProber returns the log-probability of every response token of a
// batch of sequences under a model's current weights.
type LogProber interface {
	LogProbs(ctx context.Context, req LogProbsRequest) (LogProbsResult, error)
}

// Checkpointer saves and restores a trainable role's weights and
// optimizer state, and writes its final model.
type Checkpointer interface {
	// Save writes a resumable checkpoint under req.Root (a folder per
	// step, the newest req.Keep kept) with req.State stored alongside.
	Save(ctx context.Context, req SaveRequest) (SaveResult, error)
	// Load restores weights and optimizer state from req.Dir and returns
	// the state saved with them.
	Load(ctx context.Context, req LoadRequest) (LoadResult, error)
	// Export writes the current weights as a Hugging Face model folder.
	Export(ctx context.Context, req ExportRequest) error
}

// Actor is the policy being trained. Not safe for concurrent use: the
// driver calls one method at a time.
type Actor interface {
	LogProber
	// TrainStep runs one optimizer step: forward and backward over every
	// micro-batch (gradients add up), then clipping and AdamW at req.LR,
	// unless the loss or gradient is not finite (then nothing changes and
	// the result says Skipped).
	TrainStep(ctx context.Context, req ActorStep) (ActorStepResult, error)
	// Weights returns a copy of the current parameters, to publish to
	// the rollout engine.
	Weights(ctx context.Context) (Weights, error)
	Checkpointer
}

// Critic is the value model of PPO with GAE. Not safe for concurrent use.
type Critic interface {
	// Values returns V(s_t) for every response token: the value of the
	// state just before the token is generated.
	Values(ctx context.Context, req ValuesRequest) (ValuesResult, error)
	// TrainStep is one optimizer step of the clipped value loss.
	TrainStep(ctx context.Context, req CriticStep) (CriticStepResult, error)
	Checkpointer
}

// Reference is the frozen initial policy the KL penalty compares with.
// Safe for concurrent use (inference only).
type Reference interface {
	LogProber
}

// Reward scores finished rollouts. Safe for concurrent use. It returns
// one result per sample, in order, or an error and no results.
type Reward interface {
	Score(ctx context.Context, req ScoreRequest) (ScoreResult, error)
}

// Set is the roles of one run, as the driver (trainer/ppo) uses them.
// The driver uses every role it is given: Critic and Reference may be
// nil when the algorithm does not need them (a builder makes only what
// Spec asks for); given anyway, they are computed and their results
// ignored where the algorithm has no use for them (values without gae, a
// KL with coefficient 0), which changes nothing else. Reward may be nil
// when an environment gives the rewards.
type Set struct {
	Actor     Actor
	Critic    Critic    // required by gae
	Reference Reference // required by a KL penalty
	Reward    Reward
	Rollout   Rollout
}
