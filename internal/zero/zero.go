// Package zero trains one model data-parallel over the ranks of a
// collective.Comm with its training state sharded ZeRO-style (Rajbhandari
// et al. 2020, https://arxiv.org/abs/1910.02054; DeepSpeed's and
// OpenRLHF's --ds.zero_stage 0|1|2|3):
//
//   - stage 0: gradients reduced over the ranks, every rank holds and
//     updates every parameter and the whole AdamW state;
//   - stage 1: the AdamW moments are sharded: each rank updates its shard
//     of the parameters, then the shards are all-gathered;
//   - stage 2: gradients are sharded too: each block's gradients are
//     reduce-scattered as soon as its backward pass ends and freed;
//   - stage 3: parameters are sharded too: each block's parameters are
//     all-gathered just before its forward and backward passes and freed
//     right after.
//
// Parameters are grouped into buckets, one per transformer block and one
// for the rest (embeddings, final norm, heads), each a flat buffer split
// over the ranks by collective.Partition. Every stage reduces gradients
// in one schedule (a reduce-scatter of each bucket after each
// micro-batch, added to a per-rank shard accumulator in micro-batch
// order), takes the gradient norm over the same shards, and applies
// AdamW element by element (optim.Update), so stages 1, 2 and 3 give the
// bits of stage 0 at the same number of ranks. docs/ZERO.md has the
// schedule, the memory per rank and the checkpoint format.
//
// A step on each rank is:
//
//	e.BeginMicro(ctx)             // for each of the rank's micro-batches
//	loss := …forward… ; tp.Backward(loss)
//	e.EndMicro(ctx)
//	…
//	global, _ := zero.SumF64(ctx, comm, localLoss)
//	u, err := e.Step(ctx, global, lr)
//
// with the engine's Runner set on the model (model.Blocked.SetBlockRunner)
// and each micro-batch's loss normalised by the global batch.
package zero

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Config is one engine's settings.
type Config struct {
	// Stage is the ZeRO stage, 0 to 3.
	Stage int `flag:"ds.zero_stage"`
	// Optim is AdamW's hyper-parameters.
	Optim optim.Config
	// MaxNorm clips the global gradient norm (torch's clip_grad_norm_);
	// 0 = off.
	MaxNorm float64
	// Recompute makes the engine's Runner recompute each block's
	// activations in the backward pass (gradient checkpointing); at stage
	// 3 one gather of the block serves recomputation and backward.
	Recompute bool
	// Poison makes a released stage-3 parameter read as NaN instead of
	// having no data, so a test sees any op that reads a weight outside
	// its gather (nil data panics instead). For tests and debugging.
	Poison bool
}

// Validate checks the stage and AdamW's settings.
func (c Config) Validate() error {
	var errs []error
	if c.Stage < 0 || c.Stage > 3 {
		errs = append(errs, fmt.Errorf("zero: stage must be 0, 1, 2 or 3, got %d", c.Stage))
	}
	if !(c.MaxNorm >= 0) || math.IsInf(c.MaxNorm, 0) {
		errs = append(errs, fmt.Errorf("zero: max norm must be a finite number ≥ 0, got %g", c.MaxNorm))
	}
	if err := c.Optim.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Engine is one rank's share of a data-parallel model and its training
// state. Every rank of the Comm builds one over an identical model and
// calls the same methods in the same order (they run collectives). An
// Engine is not safe for concurrent use.
type Engine struct {
	cfg        Config
	comm       collective.Comm
	rank, size int
	params     nn.Params
	buckets    []*bucket // blocks in layer order, then the rest
	blocks     int       // buckets[:blocks] are transformer blocks
	segs       []tensor.Segment

	// Scratch, reused every micro-batch (sizes in docs/ZERO.md).
	tmp    []float32 // a shard: reduce-scatter result, parameter shard to all-gather
	blockW []float32 // stage 3: one block's gathered parameters
	blockG []float32 // stages 2, 3: one block's full gradients
	restW  []float32 // stage 3: the rest bucket's gathered parameters
	poison []float32 // Poison: NaNs that released parameters read
	f64    []float64 // the gradient norm's partial sum

	ctx      context.Context // the open micro-batch's, for the block hooks
	inMicro  bool
	gathered []float32 // stage 3: Gather's full parameters, while held
	err      error     // the first failure inside a block hook
	adamStep int       // AdamW updates applied (skipped steps not counted)
	steps    int       // Step calls, skipped ones included
}

// New shards model m's training state for this rank of comm. Every rank
// calls it with a model of identical weights (it checks names, shapes and
// a checksum of the weights across ranks). m's parameters are rebound: at
// stages 0–2 each tensor's Data and Grad become views of the engine's
// bucket buffers (slices of the old Data taken before New go stale); at
// stage 3 only this rank's shards are kept and each tensor's Data is nil
// except while the engine has gathered it (Numel is then 0; Shape stays).
func New(ctx context.Context, comm collective.Comm, m model.CausalLM, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, comm: comm, rank: comm.Rank(), size: comm.Size(), params: m.Params(), f64: make([]float64, 1)}
	if err := e.params.Validate(); err != nil {
		return nil, fmt.Errorf("zero: %w", err)
	}
	blocked, _ := m.(model.Blocked)
	if blocked == nil && cfg.Stage >= 2 {
		return nil, fmt.Errorf("zero: stage %d partitions gradients block by block, but %T does not run its blocks through a model.BlockRunner (model.Blocked); use stage 0 or 1", cfg.Stage, m)
	}
	buckets, blocks, err := layout(e.params, blocked, m.Dims().Layers)
	if err != nil {
		return nil, err
	}
	e.buckets, e.blocks = buckets, blocks
	for _, b := range e.buckets {
		b.parts = collective.Partition(b.n, e.size)
		b.shard = b.parts[e.rank]
	}
	if err := e.checkReplicas(ctx); err != nil {
		return nil, err
	}
	e.allocate()
	e.segs = make([]tensor.Segment, e.blocks)
	for i := range e.segs {
		e.segs[i] = e.segment(e.buckets[i])
	}
	return e, nil
}

// Stage is the ZeRO stage.
func (e *Engine) Stage() int { return e.cfg.Stage }

// Rank is this rank's index, Size the number of ranks.
func (e *Engine) Rank() int { return e.rank }

// Size is the number of ranks.
func (e *Engine) Size() int { return e.size }

// Params is the model's parameter list (at stage 3 their data is nil
// unless gathered).
func (e *Engine) Params() nn.Params { return e.params }

// Count is the number of scalar parameters of the model, Ψ (the
// parameters' Count is 0 at stage 3 while they are released).
func (e *Engine) Count() int {
	n := 0
	for _, b := range e.buckets {
		n += b.n
	}
	return n
}

// AdamSteps is the number of AdamW updates applied (skipped steps not
// counted), the t of the bias corrections.
func (e *Engine) AdamSteps() int { return e.adamStep }

// slot is one parameter inside a bucket.
type slot struct {
	name   string
	t      *tensor.Tensor
	shape  []int
	off, n int // [off, off+n) of the bucket's flat buffer
}

// bucket is a group of parameters reduced, sharded and gathered as one
// flat buffer: the concatenation of its parameters in Params order.
type bucket struct {
	name  string // "layer.<i>" or "rest" ("all" for a model without blocks)
	slots []slot
	n     int                // elements
	parts []collective.Range // every rank's shard
	shard collective.Range   // this rank's

	w      []float32 // stages 0–2: the full parameters (tensors' Data are views)
	wShard []float32 // stage 3: this rank's parameter shard
	g      []float32 // full gradients (tensors' Grad are views): stages 0, 1; the rest bucket at 2, 3
	acc    []float32 // this rank's shard of the gradient sum over ranks and micro-batches
	m, v   []float32 // AdamW moments: stage 0 full, else this rank's shard
}

// layout groups params into one bucket per block (in layer order) and a
// last one for the parameters of no block; a model without blocks is one
// bucket. It returns the buckets and how many are blocks.
func layout(params nn.Params, blocked model.Blocked, layers int) ([]*bucket, int, error) {
	index := make(map[*tensor.Tensor]int, len(params))
	for i, p := range params {
		if _, dup := index[p.Tensor]; dup {
			return nil, 0, fmt.Errorf("zero: parameter %s is a tensor listed twice", p.Name)
		}
		index[p.Tensor] = i
	}
	owner := make([]int, len(params)) // bucket+1 of each parameter, 0 = rest
	var out []*bucket
	if blocked != nil {
		for l := 0; l < layers; l++ {
			b := &bucket{name: fmt.Sprintf("layer.%d", l)}
			for _, p := range blocked.BlockParams(l) {
				i, ok := index[p.Tensor]
				switch {
				case !ok:
					return nil, 0, fmt.Errorf("zero: block %d's parameter %s is not in the model's Params", l, p.Name)
				case owner[i] != 0:
					return nil, 0, fmt.Errorf("zero: parameter %s is in blocks %d and %d", p.Name, owner[i]-1, l)
				}
				owner[i] = l + 1
				b.add(params[i])
			}
			out = append(out, b)
		}
	}
	rest := &bucket{name: "rest"}
	if blocked == nil {
		rest.name = "all"
	}
	for i, p := range params {
		if owner[i] == 0 {
			rest.add(p)
		}
	}
	blocks := len(out)
	if rest.n > 0 || len(out) == 0 {
		out = append(out, rest)
	}
	return out, blocks, nil
}

func (b *bucket) add(p nn.Param) {
	n := 1
	for _, d := range p.Tensor.Shape {
		n *= d
	}
	b.slots = append(b.slots, slot{name: p.Name, t: p.Tensor, shape: append([]int(nil), p.Tensor.Shape...), off: b.n, n: n})
	b.n += n
}

// checkReplicas makes sure every rank holds the same parameters (names,
// shapes) with the same weights: it exchanges a hash of the layout and a
// float64 checksum of the weights (an all-gather through AllReduceF64:
// rank r fills its own two slots, every other slot adds zero).
func (e *Engine) checkReplicas(ctx context.Context) error {
	h := fnv.New64a()
	var sum float64
	for _, b := range e.buckets {
		for _, s := range b.slots {
			fmt.Fprintf(h, "%s%v;", s.name, s.shape)
			if len(s.t.Data) != s.n {
				return fmt.Errorf("zero: rank %d: parameter %s has %d values for shape %v (already sharded?)", e.rank, s.name, len(s.t.Data), s.shape)
			}
			for _, x := range s.t.Data {
				sum += float64(x)
			}
		}
	}
	all := make([]float64, 2*e.size)
	all[2*e.rank], all[2*e.rank+1] = float64(h.Sum64()>>12), sum
	if err := e.comm.AllReduceF64(ctx, all); err != nil {
		return fmt.Errorf("zero: rank %d: checking the replicas: %w", e.rank, err)
	}
	for r := 1; r < e.size; r++ {
		if all[2*r] != all[0] {
			return fmt.Errorf("zero: rank %d's parameter names or shapes differ from rank 0's", r)
		}
		if math.Float64bits(all[2*r+1]) != math.Float64bits(all[1]) {
			return fmt.Errorf("zero: rank %d's weights differ from rank 0's (checksums %v and %v): every rank must start from the same weights", r, all[2*r+1], all[1])
		}
	}
	return nil
}

// allocate builds every buffer of this rank's stage and rebinds the
// parameters' Data and Grad.
func (e *Engine) allocate() {
	st := e.cfg.Stage
	maxShard, maxBlock, maxParam := 0, 0, 0
	for i, b := range e.buckets {
		maxShard = max(maxShard, b.shard.Len())
		if i < e.blocks {
			maxBlock = max(maxBlock, b.n)
		}
		for _, s := range b.slots {
			maxParam = max(maxParam, s.n)
		}
	}
	e.tmp = make([]float32, maxShard)
	if st >= 2 {
		e.blockG = make([]float32, maxBlock)
	}
	if st == 3 {
		e.blockW = make([]float32, maxBlock)
		if e.cfg.Poison {
			e.poison = make([]float32, maxParam)
			for i := range e.poison {
				e.poison[i] = float32(math.NaN())
			}
		}
	}
	for i, b := range e.buckets {
		isBlock := i < e.blocks
		b.acc = make([]float32, b.shard.Len())
		if st == 0 {
			b.m, b.v = make([]float32, b.n), make([]float32, b.n)
		} else {
			b.m, b.v = make([]float32, b.shard.Len()), make([]float32, b.shard.Len())
		}
		full := make([]float32, b.n)
		for _, s := range b.slots {
			copy(full[s.off:s.off+s.n], s.t.Data)
		}
		if st == 3 {
			b.wShard = append([]float32(nil), full[b.shard.Lo:b.shard.Hi]...)
			if !isBlock {
				e.restW = full // reused as the rest's gather buffer
			}
			e.release(b)
		} else {
			b.w = full
			b.bind(b.w)
		}
		if st < 2 || !isBlock {
			b.g = make([]float32, b.n)
			b.bindGrad(b.g)
		} else {
			b.bindGrad(nil)
		}
	}
}

// bind points every parameter's Data at its range of buf (a full bucket).
func (b *bucket) bind(buf []float32) {
	for _, s := range b.slots {
		s.t.Data = buf[s.off : s.off+s.n : s.off+s.n]
	}
}

// bindGrad points every parameter's Grad at its range of buf, or clears it.
func (b *bucket) bindGrad(buf []float32) {
	for _, s := range b.slots {
		if buf == nil {
			s.t.Grad = nil
		} else {
			s.t.Grad = buf[s.off : s.off+s.n : s.off+s.n]
		}
	}
}

// release drops a stage-3 bucket's gathered parameters: nil data, or the
// poison.
func (e *Engine) release(b *bucket) {
	for _, s := range b.slots {
		if e.poison != nil {
			s.t.Data = e.poison[:s.n:s.n]
		} else {
			s.t.Data = nil
		}
	}
}

// rest is the bucket of the parameters of no block (nil when every
// parameter is in a block).
func (e *Engine) rest() *bucket {
	if len(e.buckets) > e.blocks {
		return e.buckets[len(e.buckets)-1]
	}
	return nil
}
