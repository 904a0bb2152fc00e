package transfer

import (
	"context"
	"fmt"
	"sync"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Receiver loads fetched snapshots into a live parameter set in place.
// Nothing in the set changes until the whole payload has arrived and its
// length, checksum, names and shapes are verified: the bytes land in a
// staging copy of the set (allocated on the first fetch and kept, so
// later fetches touch no new memory), then are copied over. A snapshot
// older than the loaded version is refused. Fetches are serialized; the
// caller keeps readers of the set (a model mid-forward) out meanwhile.
type Receiver struct {
	c *Client

	mu      sync.Mutex
	params  nn.Params
	staging nn.Params
	version int64
}

// NewReceiver returns a receiver for params, whose current weights are
// version (the initial policy: 0).
func NewReceiver(c *Client, params nn.Params, version int64) (*Receiver, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("transfer: receiver: %w", err)
	}
	if version < 0 {
		return nil, fmt.Errorf("transfer: receiver: version %d is negative", version)
	}
	return &Receiver{c: c, params: params, version: version}, nil
}

// Version returns the version of the loaded weights.
func (r *Receiver) Version() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

// Fetch loads the snapshot at url (want: an exact version, or Latest)
// and returns its Meta. A version older than the loaded one is refused
// with ErrVersion; the same version loads again. On any error the
// parameters are unchanged.
func (r *Receiver) Fetch(ctx context.Context, url string, want int64) (Meta, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.c.fetch(ctx, url, want, r.version, func(pl *payload) error {
		if err := checkTargets(pl.sr, r.params); err != nil {
			return err
		}
		return readInto(pl.sr, r.stage())
	})
	if err != nil {
		return m, err
	}
	for i, p := range r.params {
		copy(p.Tensor.Data, r.staging[i].Tensor.Data)
	}
	r.version = m.Version
	return m, nil
}

// stage returns the staging set: a tensor per parameter, same names and
// shapes, allocated once.
func (r *Receiver) stage() nn.Params {
	if r.staging == nil {
		r.staging = make(nn.Params, len(r.params))
		for i, p := range r.params {
			r.staging[i] = nn.Param{Name: p.Name, Tensor: tensor.New(p.Tensor.Shape...)}
		}
	}
	return r.staging
}

// Release drops the staging copy (the next fetch allocates it again).
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.staging = nil
}
