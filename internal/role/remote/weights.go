package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/role"
)

// WeightsRef points at weights published on a data plane. It is what an
// RPC carries instead of the tensors (grpc refuses messages over 4 MB,
// and a whole-message codec would hold every byte in memory twice).
type WeightsRef struct {
	// URL is where the bytes are: an http:// address, a /dev/shm path…
	// whatever the plane that published them reads.
	URL      string
	Version  int64  // the policy version the weights carry
	Size     int64  // bytes behind URL
	Checksum string // the plane's digest of those bytes, e.g. "sha256:…"
}

// WeightsPlane moves parameter tensors between processes beside the
// RPCs: the actor's weights to the driver or straight to the rollout
// engine's worker. Implementations are safe for concurrent use.
type WeightsPlane interface {
	// Publish makes w fetchable and returns where. The plane keeps it at
	// least until its next Publish: the remote code fetches each
	// reference once, right after it was published.
	Publish(ctx context.Context, w role.Weights) (WeightsRef, error)
	// Fetch reads the weights ref points to, refusing bytes whose size,
	// checksum or version differ from ref. The caller owns the result.
	Fetch(ctx context.Context, ref WeightsRef) (role.Weights, error)
}

// errNoPlane and errNoWorkerPlane are weight transfers without a plane
// on the driver's or the worker's side.
var (
	errNoPlane       = errors.New("the driver has no weights plane (weights never travel in RPC messages)")
	errNoWorkerPlane = errors.New("the worker has no weights plane (weights never travel in RPC messages)")
)

// SyncWeights gives the rollout engine the actor's current weights as
// version. When both are remote, the rollout's worker fetches them
// straight from the plane of the actor's worker: one transfer, not
// through this process. Otherwise it is Actor.Weights then
// Rollout.LoadWeights, as in process.
func SyncWeights(ctx context.Context, actor role.Actor, rollout role.Rollout, version int64) error {
	a, okA := actor.(*actorClient)
	r, okR := rollout.(*rolloutClient)
	if okA && okR {
		ref, err := a.publish(ctx, version)
		if err != nil {
			return err
		}
		return r.loadRef(ctx, ref)
	}
	w, err := actor.Weights(ctx)
	if err != nil {
		return err
	}
	w.Version = version
	return rollout.LoadWeights(ctx, w)
}

// Publish has the actor publish its current weights as version without
// moving them here: on its worker's plane when it is remote (a
// data-parallel rank above 0 publishes none; it only takes part in
// gathering them), else by asking for Weights and dropping the copy. The
// ranks of a data-parallel actor other than the one SyncWeights reads
// are asked this way.
func Publish(ctx context.Context, actor role.Actor, version int64) error {
	if a, ok := actor.(*actorClient); ok {
		_, err := a.publish(ctx, version)
		return err
	}
	_, err := actor.Weights(ctx)
	return err
}

// publishWeights is the server side of Actor.Weights: publish the
// actor's parameters as req.Version.
func publishWeights(plane WeightsPlane, a role.Actor) func(context.Context, weightsRequest) (WeightsRef, error) {
	return func(ctx context.Context, req weightsRequest) (WeightsRef, error) {
		if plane == nil {
			return WeightsRef{}, &statusError{code: CodeFailedPrecondition, err: errNoWorkerPlane}
		}
		w, err := a.Weights(ctx)
		if err != nil {
			return WeightsRef{}, err
		}
		w.Version = req.Version
		ref, err := plane.Publish(ctx, w)
		if err != nil {
			return WeightsRef{}, fmt.Errorf("publish weights: %w", err)
		}
		return ref, nil
	}
}

// loadWeights is the server side of Rollout.LoadWeights: fetch, then load.
func loadWeights(plane WeightsPlane, r role.Rollout) func(context.Context, WeightsRef) (none, error) {
	return func(ctx context.Context, ref WeightsRef) (none, error) {
		if plane == nil {
			return none{}, &statusError{code: CodeFailedPrecondition, err: errNoWorkerPlane}
		}
		w, err := plane.Fetch(ctx, ref)
		if err != nil {
			return none{}, fmt.Errorf("fetch weights %d from %s: %w", ref.Version, ref.URL, err)
		}
		return none{}, r.LoadWeights(ctx, w)
	}
}
