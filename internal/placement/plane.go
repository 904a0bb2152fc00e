package placement

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/transfer"
)

// shmDir is where same-host weight snapshots go when it exists.
const shmDir = "/dev/shm"

// snapshotName is the name the actor's weights are published under.
const snapshotName = "policy"

// plane is remote.WeightsPlane over package transfer: Publish serves the
// snapshot from this process's publisher (HTTP, or /dev/shm for a peer on
// the same host), Fetch pulls one and checks it against the reference.
type plane struct {
	pub    *transfer.Publisher // nil in a process that only fetches
	base   string              // http://host:port of pub
	client *transfer.Client
	stop   func()
}

// newPlane makes a plane; with listen != "" it also publishes, serving on
// that address (host:port, port 0 for any).
func newPlane(secret string, listen string) (*plane, error) {
	cfg := transfer.DefaultConfig()
	cfg.Token = transfer.Secret(secret)
	if st, err := os.Stat(shmDir); err == nil && st.IsDir() {
		cfg.ShmDir = shmDir
	}
	c, err := transfer.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	p := &plane{client: c, stop: func() {}}
	if listen == "" {
		return p, nil
	}
	if p.pub, err = transfer.NewPublisher(cfg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		p.pub.Close()
		return nil, fmt.Errorf("placement: weights plane: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go transfer.Serve(ctx, ln, p.pub)
	p.base = transfer.Addr(ln)
	p.stop = func() { cancel(); ln.Close() }
	return p, nil
}

// Publish implements remote.WeightsPlane.
func (p *plane) Publish(ctx context.Context, w role.Weights) (remote.WeightsRef, error) {
	if p.pub == nil {
		return remote.WeightsRef{}, fmt.Errorf("placement: this process publishes no weights")
	}
	meta, err := p.pub.Publish(ctx, snapshotName, transfer.Weights{Version: w.Version, Params: inproc.ModelParams(w.Params)})
	if err != nil {
		return remote.WeightsRef{}, err
	}
	return remote.WeightsRef{URL: transfer.URL(p.base, snapshotName), Version: meta.Version, Size: meta.Size, Checksum: meta.Checksum}, nil
}

// Fetch implements remote.WeightsPlane: the bytes must match ref's size
// and checksum (transfer checks them against its own headers before it
// decodes anything).
func (p *plane) Fetch(ctx context.Context, ref remote.WeightsRef) (role.Weights, error) {
	w, meta, err := p.client.Fetch(ctx, ref.URL, ref.Version)
	if err != nil {
		return role.Weights{}, err
	}
	if meta.Size != ref.Size || meta.Checksum != ref.Checksum {
		return role.Weights{}, fmt.Errorf("placement: weights %d from %s: %d bytes %s, the reference says %d bytes %s",
			ref.Version, ref.URL, meta.Size, meta.Checksum, ref.Size, ref.Checksum)
	}
	return role.Weights{Version: w.Version, Params: fromModel(w.Params)}, nil
}

// Close stops serving and drops the published snapshot.
func (p *plane) Close() {
	p.stop()
	if p.pub != nil {
		p.pub.Close()
	}
	p.client.CloseIdleConnections()
}

// fromModel is inproc.ModelParams' inverse (sharing the values).
func fromModel(ps nn.Params) []role.Param {
	out := make([]role.Param, len(ps))
	for i, p := range ps {
		out[i] = role.Param{Name: p.Name, Shape: p.Tensor.Shape, Data: p.Tensor.Data}
	}
	return out
}
