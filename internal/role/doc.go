// Package role defines the roles of an RL run and the typed messages they
// exchange, so that the driver (trainer/ppo) reads the same whether the
// roles live in this process (package role/inproc) or, later, on other
// machines behind a network transport.
//
// The five roles follow OpenRLHF's placement (its Ray actor groups):
//
//	Rollout    generates completions with a given policy version (vLLM there)
//	Actor      the policy being trained: log-probs, PPO optimizer steps, weights
//	Critic     the value model (GAE only): values, value-loss optimizer steps
//	Reference  the frozen initial policy: log-probs for the KL penalty
//	Reward     scores finished rollouts (reward model, verifier, remote server)
//
// # Contracts
//
// Every method takes a context and a request value and returns a result
// value or an error. Messages are plain data: slices the receiver owns
// once a call returns (a role never keeps a reference to a request's
// slices, and a caller may keep and modify a result), no method-name
// strings, no callbacks, no pointers into another role's state. That is
// what lets a transport serialise them unchanged. They are built from
// plain types only (generation requests and results, weights as named
// values, reward samples from reward/grade, loss settings from rl), so
// this package pulls in no model, engine, loader or tokenizer (a test
// checks it with go list).
//
// Token data is ragged: a batch is a list of sequences, each a prompt
// followed by a response, and per-token quantities (log-probs, values,
// advantages) have one entry per response token. Padding is a local
// concern of whoever builds tensors (see Pad and Mask).
//
// # Packing
//
// The Pack field of LogProbsRequest, ValuesRequest, ActorStep and
// CriticStep (--ds.packing_samples) asks a model role to lay the
// sequences of each forward pass out packed, several to a row, instead of
// one per row padded to the longest. Packing happens inside one pass (an
// inference chunk, a micro-batch), never across passes, so it changes
// neither which sequences form a micro-batch nor how the loss is
// normalised; each sequence is computed as if alone (positions from 0,
// attention that never leaves it), so the results equal the padded ones
// to float rounding. Messages and results stay ragged rows either way.
//
// # Co-location
//
// A role owns its weights. Two roles may share one copy of a model only
// when neither writes it: the reference may use the loaded base weights
// as they are because the actor trains its own separate copy; the reward
// model and a critic initialised from it are the same story. The rollout
// engine always holds its own copy and changes it only through
// LoadWeights, between requests, so in-flight generation never sees a
// half-updated policy. Roles an algorithm does not need are simply not
// built (no critic unless GAE, no reference without a KL penalty).
//
// # Building roles
//
// Spec says which roles a run needs and their settings (optimizers,
// reward sources, models by reference, the rollout engine's cache), as
// data that encodes to JSON; a builder (role/inproc.Build, or a worker
// that hosts some roles) turns it into a Set, the roles the driver uses.
package role
