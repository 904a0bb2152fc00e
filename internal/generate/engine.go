package generate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
)

// ErrClosed is returned by calls on a closed Engine.
var ErrClosed = errors.New("generate: engine closed")

// Engine generates completions for many requests at once: one scheduler
// goroutine owns the model, the paged KV cache and every sequence, and
// runs one batched model step after another (continuous batching).
// Requests join between steps, finished samples leave, and long prompts
// are fed in chunks.
//
// Engine is safe for concurrent use. It owns the model given to New: do
// not run or modify that model elsewhere while the engine is open (use
// LoadWeights to change its weights).
type Engine struct {
	cfg    Config
	model  model.Decoder
	params nn.Params
	rules  stopRules
	blocks int // KV blocks in the cache

	submit  chan []*group // the requests of one call, admitted together
	weights chan *weightUpdate
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once

	// mu guards stats.
	mu    sync.Mutex
	stats Stats
}

// Stats are counters of an engine's work since New.
type Stats struct {
	Steps           int // model steps run
	PromptTokens    int // prompt tokens fed through the model (prefill)
	GeneratedTokens int // tokens sampled
	Preemptions     int // sequences evicted for lack of KV blocks (recomputed later)
	KVBlocks        int // total KV blocks
	KVBlocksUsed    int // blocks in use after the last step
	KVBlocksPeak    int // most blocks in use at once
	BlockSize       int // tokens per block
	// Prefix caching (Config.PrefixCaching): tokens looked up (prompts at
	// admission, a preempted sequence's tokens when it resumes), those
	// found cached (not computed), and idle cached blocks after the last
	// step.
	PrefixQueryTokens int
	PrefixHitTokens   int
	KVBlocksCached    int
	WeightVersion     int64 // current policy version
}

// PrefixHitRate is PrefixHitTokens / PrefixQueryTokens (0 before any
// query).
func (s Stats) PrefixHitRate() float64 {
	if s.PrefixQueryTokens == 0 {
		return 0
	}
	return float64(s.PrefixHitTokens) / float64(s.PrefixQueryTokens)
}

// New starts an engine on m. dec may be nil (then no stop strings and no
// Completion.Text). Call Close to stop it.
func New(m model.Decoder, dec TextDecoder, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	shape := m.KVShape()
	nb := cfg.numBlocks(shape)
	if nb < 1 {
		return nil, fmt.Errorf("generate: a KV cache of %d MiB holds no block of %d tokens (%d bytes each)",
			cfg.KVCacheMB, cfg.BlockSize, BlockBytes(shape, cfg.BlockSize))
	}
	if cfg.DType != half.F32 {
		if _, ok := m.(model.StepDTyper); !ok {
			return nil, fmt.Errorf("generate: dtype %v: model %T cannot decode from 16-bit weights", cfg.DType, m)
		}
	}
	cache, err := NewPagedCache(shape, cfg.BlockSize, nb)
	if err != nil {
		return nil, err
	}
	if cfg.PrefixCaching {
		cache.EnablePrefixCaching()
	}
	e := &Engine{cfg: cfg, model: m, params: m.Params(), blocks: nb,
		rules:  stopRules{eos: cfg.EOS, dec: dec, limit: shape.MaxPositions},
		submit: make(chan []*group), weights: make(chan *weightUpdate),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	e.stats.KVBlocks, e.stats.BlockSize = nb, cfg.BlockSize
	e.convertWeights()
	s := newScheduler(e, cache)
	go s.loop()
	return e, nil
}

// convertWeights makes the model's 16-bit weight copies for Step from its
// current parameters (Config.DType); for F32 it drops copies an earlier
// engine may have left on the model.
func (e *Engine) convertWeights() {
	if sd, ok := e.model.(model.StepDTyper); ok && (e.cfg.DType != half.F32 || sd.StepDType() != half.F32) {
		sd.SetStepDType(e.cfg.DType)
	}
}

// Config returns the engine's configuration (defaults filled in).
func (e *Engine) Config() Config { return e.cfg }

// MaxPositions is the longest sequence (prompt plus completion) the
// model can encode; 0 means no limit.
func (e *Engine) MaxPositions() int { return e.rules.limit }

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Close stops the engine. Requests still queued or running fail with
// ErrClosed. Close waits for the scheduler to stop; it is idempotent.
func (e *Engine) Close() error {
	e.once.Do(func() { close(e.quit) })
	<-e.stopped
	return nil
}

// Generate runs every request to completion and returns their results in
// order. Requests are validated first: one bad request fails the call
// before anything runs. If ctx ends, unfinished requests are dropped and
// ctx's error is returned.
func (e *Engine) Generate(ctx context.Context, reqs []Request) ([]Result, error) {
	gs := make([]*group, len(reqs))
	for i, r := range reqs {
		g, err := e.newGroup(ctx, r, false)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		gs[i] = g
	}
	// one submission: the scheduler sees every request of the call at the
	// same step, so the batches it forms (and the last bits of every
	// log-prob, which depend on a GEMM's row count) do not depend on
	// goroutine timing, and a training run repeats bit for bit
	if err := e.enqueue(ctx, gs...); err != nil {
		return nil, err
	}
	out := make([]Result, len(gs))
	for i, g := range gs {
		select {
		case <-g.finished:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if g.err != nil {
			return nil, g.err
		}
		out[i] = g.result()
	}
	return out, nil
}

// Stream submits one request and returns its events: one per sampled
// token of any sample (interleaved), the last of each sample with Done
// and the Completion, and, if the request fails, a final event with Err.
// The channel is closed after the last event. The engine never waits for
// a slow reader (events queue up without bound); stop reading only after
// cancelling ctx.
func (e *Engine) Stream(ctx context.Context, r Request) (<-chan Event, error) {
	g, err := e.newGroup(ctx, r, true)
	if err != nil {
		return nil, err
	}
	if err := e.enqueue(ctx, g); err != nil {
		return nil, err
	}
	out := make(chan Event)
	go g.events.pump(ctx, out)
	return out, nil
}

// Validate checks a request against the sampling rules and this engine's
// model, cache and tokenizer, without running it.
func (e *Engine) Validate(r Request) error {
	p := r.Params.withDefaults()
	if err := p.Validate(); err != nil {
		return err
	}
	shape := e.model.KVShape()
	vocab := e.params[0].Tensor.Shape[0]
	switch {
	case len(r.Prompt) == 0:
		return errors.New("prompt is empty (at least one token is needed)")
	case e.Room(len(r.Prompt)) <= 0:
		return &LengthError{Limit: shape.MaxPositions, Prompt: len(r.Prompt)}
	case p.N > e.cfg.MaxSeqs:
		return fmt.Errorf("n = %d exceeds the engine's %d sequences per step", p.N, e.cfg.MaxSeqs)
	case len(p.StopStrings) > 0 && e.rules.dec == nil:
		return errors.New("stop strings need an engine with a tokenizer")
	}
	if need := len(r.Prompt)/e.cfg.BlockSize + 1; need > e.blocks {
		return fmt.Errorf("prompt of %d tokens needs %d KV blocks; the cache has %d (raise the KV-cache budget)", len(r.Prompt), need, e.blocks)
	}
	for i, id := range r.Prompt {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("prompt token %d (position %d) is outside the vocabulary [0, %d)", id, i, vocab)
		}
	}
	for _, id := range p.StopTokenIDs {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("stop token id %d is outside the vocabulary [0, %d)", id, vocab)
		}
	}
	return nil
}

func (e *Engine) newGroup(ctx context.Context, r Request, stream bool) (*group, error) {
	if err := e.Validate(r); err != nil {
		return nil, err
	}
	r.Params = r.Params.withDefaults()
	r.Prompt = append([]int32(nil), r.Prompt...)
	g := &group{req: r, ctx: ctx, submitted: time.Now(), finished: make(chan struct{})}
	if stream {
		g.events = newEventQueue()
	}
	return g, nil
}

func (e *Engine) enqueue(ctx context.Context, gs ...*group) error {
	select {
	case e.submit <- gs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrClosed
	}
}

// Weights is a policy update for LoadWeights.
type Weights struct {
	// Params are the trainer's parameters under their Hugging Face names;
	// every parameter of the engine's model must be present with the same
	// shape (extra names are an error too, to catch a wrong model).
	Params nn.Params
	// Version tags completions made with these weights; 0 means the
	// current version + 1.
	Version int64
}

type weightUpdate struct {
	w     Weights
	ctx   context.Context
	reply chan error
}

// LoadWeights copies new policy weights into the engine's model in place.
//
// Requests already admitted finish on the weights they started with: the
// call stops admitting new requests, waits until the admitted ones are
// done (their samples included, even if preempted), then copies the
// weights between two model steps and bumps the version. Requests queued
// meanwhile run on the new weights. The call returns once the weights are
// in use, or with ctx's error (the update is then dropped).
func (e *Engine) LoadWeights(ctx context.Context, w Weights) error {
	if err := checkWeights(e.params, w.Params); err != nil {
		return err
	}
	u := &weightUpdate{w: w, ctx: ctx, reply: make(chan error, 1)}
	select {
	case e.weights <- u:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrClosed
	}
	return <-u.reply
}

// checkWeights verifies that src names exactly dst's parameters with the
// same shapes.
func checkWeights(dst, src nn.Params) error {
	have := make(map[string]int, len(src))
	for i, p := range src {
		have[p.Name] = i
	}
	for _, p := range dst {
		i, ok := have[p.Name]
		if !ok {
			return fmt.Errorf("generate: LoadWeights: parameter %s is missing", p.Name)
		}
		if s := src[i].Tensor; len(s.Data) != len(p.Tensor.Data) || fmt.Sprint(s.Shape) != fmt.Sprint(p.Tensor.Shape) {
			return fmt.Errorf("generate: LoadWeights: parameter %s has shape %v, the engine's model %v", p.Name, s.Shape, p.Tensor.Shape)
		}
		delete(have, p.Name)
	}
	for name := range have {
		return fmt.Errorf("generate: LoadWeights: parameter %s is not in the engine's model", name)
	}
	return nil
}

// copyWeights writes src into dst (already checked).
func copyWeights(dst, src nn.Params) {
	for _, p := range dst {
		copy(p.Tensor.Data, src.Find(p.Name).Data)
	}
}
