// Package env is for multi-turn RL: environments a policy talks to over
// several turns, and a driver that runs one episode.
//
// It follows OpenRLHF's agent API (openrlhf/utils/agent.py,
// AgentInstanceBase): an episode starts with Reset from the dataset's
// prompt and label, which returns the first observation; then the policy
// generates an action (text), Step returns the environment's feedback
// text, a reward and whether the episode is over, and the feedback is
// appended to the conversation before the next action. The transcript is
// observation + action₁ + feedback₁ + action₂ + …, and the episode's
// return is the sum of the step rewards, as OpenRLHF's multi-turn
// executor adds them up. Only action text is the policy's own output, so
// the driver records where each action lies in the transcript: a trainer
// masks everything else out of the loss.
//
// The policy is a plain callback, so the rollout engine, a scripted test
// policy or a remote model can drive the same environment.
package env

import (
	"context"
	"errors"
	"fmt"
)

// Env is one environment instance. An instance runs one episode at a time
// and need not be safe for concurrent use; run episodes in parallel on
// separate instances (OpenRLHF makes one AgentInstance per prompt).
type Env interface {
	// Reset starts an episode for a dataset prompt and label and returns
	// the first observation (usually the prompt with the task appended).
	Reset(ctx context.Context, prompt, label string) (observation string, err error)
	// Step applies the policy's action and returns the feedback text to
	// append to the transcript, the step's reward, and whether the
	// episode is over.
	Step(ctx context.Context, action string) (feedback string, reward float64, done bool, err error)
}

// Policy produces the next action from the transcript so far.
type Policy func(ctx context.Context, transcript string) (action string, err error)

// RunConfig bounds an episode.
type RunConfig struct {
	// MaxTurns stops an episode that has not ended after this many actions
	// (Episode.Done stays false): a guard against environments or
	// policies that never finish.
	MaxTurns int
}

// DefaultRunConfig allows 32 turns.
func DefaultRunConfig() RunConfig { return RunConfig{MaxTurns: 32} }

// Validate checks the configuration.
func (c RunConfig) Validate() error {
	if c.MaxTurns < 1 {
		return fmt.Errorf("env: max turns %d must be ≥ 1", c.MaxTurns)
	}
	return nil
}

// Turn is one action and the environment's answer to it.
type Turn struct {
	Action   string
	Feedback string
	Reward   float64
}

// Span is a byte range [Start, End) of a transcript.
type Span struct{ Start, End int }

// Episode is a finished (or cut-off) episode.
type Episode struct {
	Prompt, Label string
	// Transcript is the first observation, then each action followed by
	// its feedback.
	Transcript string
	// Actions are where the actions lie in Transcript, one per turn.
	Actions []Span
	Turns   []Turn
	// Return is the sum of the turn rewards.
	Return float64
	// Done reports that the environment ended the episode; false means
	// MaxTurns cut it off.
	Done bool
}

// Run plays one episode of e with policy. An error from the environment
// or the policy ends the episode with that error (naming the turn); no
// half-finished episode is returned.
func Run(ctx context.Context, e Env, prompt, label string, policy Policy, cfg RunConfig) (*Episode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if e == nil || policy == nil {
		return nil, errors.New("env: Run needs an environment and a policy")
	}
	obs, err := e.Reset(ctx, prompt, label)
	if err != nil {
		return nil, fmt.Errorf("env: reset: %w", err)
	}
	ep := &Episode{Prompt: prompt, Label: label, Transcript: obs}
	for turn := 1; turn <= cfg.MaxTurns; turn++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("env: turn %d: %w", turn, err)
		}
		action, err := policy(ctx, ep.Transcript)
		if err != nil {
			return nil, fmt.Errorf("env: turn %d: policy: %w", turn, err)
		}
		feedback, reward, done, err := e.Step(ctx, action)
		if err != nil {
			return nil, fmt.Errorf("env: turn %d: step: %w", turn, err)
		}
		start := len(ep.Transcript)
		ep.Actions = append(ep.Actions, Span{start, start + len(action)})
		ep.Transcript += action + feedback
		ep.Turns = append(ep.Turns, Turn{Action: action, Feedback: feedback, Reward: reward})
		ep.Return += reward
		if done {
			ep.Done = true
			break
		}
	}
	return ep, nil
}
