package remote

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/role"
)

// The role clients: each method is one call, except the weight
// transfers, which send a WeightsRef and move the tensors on the plane.

// checkpointClient is role.Checkpointer over the wire, for the actor and
// the critic alike.
type checkpointClient struct {
	c    *Conn
	role Role
}

func (k checkpointClient) Save(ctx context.Context, req role.SaveRequest) (role.SaveResult, error) {
	return call[role.SaveRequest, role.SaveResult](ctx, k.c, method{k.role, "Save"}, req)
}

func (k checkpointClient) Load(ctx context.Context, req role.LoadRequest) (role.LoadResult, error) {
	return call[role.LoadRequest, role.LoadResult](ctx, k.c, method{k.role, "Load"}, req)
}

func (k checkpointClient) Export(ctx context.Context, req role.ExportRequest) error {
	_, err := call[role.ExportRequest, none](ctx, k.c, method{k.role, "Export"}, req)
	return err
}

type actorClient struct {
	c *Conn
	checkpointClient
}

var _ role.Actor = (*actorClient)(nil)

func (a *actorClient) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	return call[role.LogProbsRequest, role.LogProbsResult](ctx, a.c, method{RoleActor, "LogProbs"}, req)
}

func (a *actorClient) TrainStep(ctx context.Context, req role.ActorStep) (role.ActorStepResult, error) {
	return call[role.ActorStep, role.ActorStepResult](ctx, a.c, method{RoleActor, "TrainStep"}, req)
}

// Weights asks the actor's worker to publish its weights, then fetches
// them on this side's plane.
func (a *actorClient) Weights(ctx context.Context) (role.Weights, error) {
	m := method{RoleActor, "Weights"}
	if a.c.cfg.Weights == nil {
		return role.Weights{}, a.c.fail(m, CodeFailedPrecondition, errNoPlane)
	}
	ref, err := a.publish(ctx, 0)
	if err != nil {
		return role.Weights{}, err
	}
	w, err := a.c.cfg.Weights.Fetch(ctx, ref)
	if err != nil {
		return role.Weights{}, a.c.fail(m, CodeInternal, fmt.Errorf("fetch %s: %w", ref.URL, err))
	}
	return w, nil
}

// publish has the actor's worker publish its weights as version.
func (a *actorClient) publish(ctx context.Context, version int64) (WeightsRef, error) {
	return call[weightsRequest, WeightsRef](ctx, a.c, method{RoleActor, "Weights"}, weightsRequest{Version: version})
}

type criticClient struct {
	c *Conn
	checkpointClient
}

var _ role.Critic = (*criticClient)(nil)

func (k *criticClient) Values(ctx context.Context, req role.ValuesRequest) (role.ValuesResult, error) {
	return call[role.ValuesRequest, role.ValuesResult](ctx, k.c, method{RoleCritic, "Values"}, req)
}

func (k *criticClient) TrainStep(ctx context.Context, req role.CriticStep) (role.CriticStepResult, error) {
	return call[role.CriticStep, role.CriticStepResult](ctx, k.c, method{RoleCritic, "TrainStep"}, req)
}

type referenceClient struct{ c *Conn }

var _ role.Reference = (*referenceClient)(nil)

func (r *referenceClient) LogProbs(ctx context.Context, req role.LogProbsRequest) (role.LogProbsResult, error) {
	return call[role.LogProbsRequest, role.LogProbsResult](ctx, r.c, method{RoleReference, "LogProbs"}, req)
}

type rewardClient struct{ c *Conn }

var _ role.Reward = (*rewardClient)(nil)

func (r *rewardClient) Score(ctx context.Context, req role.ScoreRequest) (role.ScoreResult, error) {
	return call[role.ScoreRequest, role.ScoreResult](ctx, r.c, method{RoleReward, "Score"}, req)
}

type rolloutClient struct{ c *Conn }

var _ role.Rollout = (*rolloutClient)(nil)

func (r *rolloutClient) Generate(ctx context.Context, req role.GenerateRequest) (role.GenerateResult, error) {
	return call[role.GenerateRequest, role.GenerateResult](ctx, r.c, method{RoleRollout, "Generate"}, req)
}

// LoadWeights publishes w on this side's plane and has the rollout's
// worker fetch and load it.
func (r *rolloutClient) LoadWeights(ctx context.Context, w role.Weights) error {
	m := method{RoleRollout, "LoadWeights"}
	if r.c.cfg.Weights == nil {
		return r.c.fail(m, CodeFailedPrecondition, errNoPlane)
	}
	ref, err := r.c.cfg.Weights.Publish(ctx, w)
	if err != nil {
		return r.c.fail(m, CodeInternal, fmt.Errorf("publish weights %d: %w", w.Version, err))
	}
	return r.loadRef(ctx, ref)
}

// loadRef has the rollout's worker fetch the weights at ref and load them.
func (r *rolloutClient) loadRef(ctx context.Context, ref WeightsRef) error {
	_, err := call[WeightsRef, none](ctx, r.c, method{RoleRollout, "LoadWeights"}, ref)
	return err
}
