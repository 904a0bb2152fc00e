package generate

import (
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/model"
)

// seq is one sequence in the KV cache: a sample being generated, or (with
// prefix sharing) the prompt of a request whose samples will fork from it.
type seq struct {
	id      int // cache handle
	g       *group
	sample  int     // sample index; −1 for a prompt parent
	tokens  []int32 // prompt + generated; tokens[cached:] still need a model step
	cached  int
	planned int  // last step this sequence was planned in
	evicted bool // preempted (blocks released, waiting to resume)
	done    bool // finished or aborted
}

func (q *seq) remaining() int { return len(q.tokens) - q.cached }

// plannedSeq is one sequence's share of a step.
type plannedSeq struct {
	q      *seq
	n      int // new tokens fed
	logits int // logit row, or −1
}

// scheduler is the engine's goroutine: it owns every sequence and the
// cache, admits requests, plans and runs steps, and samples.
//
// Policy (continuous batching, as vLLM's):
//   - every step first gives each running sequence in decode one token,
//     then fills the rest of MaxBatchTokens with prompt chunks of up to
//     MaxPrefillChunk tokens, oldest request first, then gives what is
//     left to the oldest prompts again (chunked prefill; a long prompt
//     shares the step with the ones behind it);
//   - a request is admitted (FCFS) when its n samples fit in MaxSeqs, its
//     prompt's blocks fit in the free list above a 1 % watermark, and the
//     prompt tokens the running sequences will feed in the next step
//     (each up to MaxPrefillChunk) are under one step's budget (so blocks
//     are not held long before they are used, and a long prompt does not
//     keep the requests behind it out);
//   - when a sequence needs a block and none is free, the youngest
//     sequence is preempted: its blocks are released and it is later
//     recomputed from its tokens (prompt + generated so far; with prefix
//     sharing the prompt's full blocks are re-shared from a sibling). Its
//     random generator is kept, so the outcome does not change. Preempted
//     sequences resume, oldest first, before any new request is admitted;
//   - a sequence that alone cannot fit in the whole cache finishes with
//     FinishLength.
type scheduler struct {
	e     *Engine
	cache *PagedCache

	waiting  []*group
	resume   []*seq // preempted, oldest first
	running  []*seq // admission order
	slots    int    // sequences the admitted requests use (a prompt parent counts n)
	admitted int    // requests admitted and not finished
	updates  []*weightUpdate
	finished []*group // done this step; told after the stats are published
	version  int64
	order    uint64
	step     int
	nextID   int
	freeIDs  []int
	stats    Stats
}

func newScheduler(e *Engine, c *PagedCache) *scheduler {
	return &scheduler{e: e, cache: c, stats: e.stats}
}

func (s *scheduler) loop() {
	defer close(s.e.stopped)
	for {
		if !s.drain() {
			s.shutdown()
			return
		}
		s.dropCanceled()
		s.applyUpdates()
		if s.runStep() {
			continue
		}
		if !s.wait() {
			s.shutdown()
			return
		}
	}
}

// drain takes every submission and update that is ready without
// blocking; it returns false when the engine is closing.
func (s *scheduler) drain() bool {
	for {
		select {
		case gs := <-s.e.submit:
			s.waiting = append(s.waiting, gs...)
		case u := <-s.e.weights:
			s.updates = append(s.updates, u)
		case <-s.e.quit:
			return false
		default:
			return true
		}
	}
}

// wait blocks until something arrives (or, with work queued that could
// not run, until a short timer re-checks cancellations).
func (s *scheduler) wait() bool {
	var tick <-chan time.Time
	if len(s.waiting)+len(s.updates) > 0 {
		tick = time.After(20 * time.Millisecond)
	}
	select {
	case gs := <-s.e.submit:
		s.waiting = append(s.waiting, gs...)
	case u := <-s.e.weights:
		s.updates = append(s.updates, u)
	case <-tick:
	case <-s.e.quit:
		return false
	}
	return true
}

func (s *scheduler) shutdown() {
	for _, g := range s.waiting {
		g.complete(ErrClosed)
	}
	seen := map[*group]bool{}
	for _, q := range append(s.running, s.resume...) {
		if !seen[q.g] {
			seen[q.g] = true
			q.g.complete(ErrClosed)
		}
	}
	for _, u := range s.updates {
		u.reply <- ErrClosed
	}
}

// dropCanceled removes requests whose context ended.
func (s *scheduler) dropCanceled() {
	s.waiting = slices.DeleteFunc(s.waiting, func(g *group) bool {
		if err := g.ctx.Err(); err != nil {
			g.complete(err)
			return true
		}
		return false
	})
	var dead []*group
	for _, q := range append(s.running, s.resume...) {
		if q.g.ctx.Err() != nil && !slices.Contains(dead, q.g) {
			dead = append(dead, q.g)
		}
	}
	for _, g := range dead {
		s.abort(g, g.ctx.Err())
	}
}

// abort ends an admitted request, releasing all its sequences.
func (s *scheduler) abort(g *group, err error) {
	drop := func(q *seq) bool {
		if q.g != g {
			return false
		}
		s.cache.Release(q.id)
		s.freeID(q.id)
		q.done = true
		return true
	}
	s.running = slices.DeleteFunc(s.running, drop)
	s.resume = slices.DeleteFunc(s.resume, drop)
	s.slots -= g.live // a prompt parent holds the slots of all n samples
	s.admitted--
	s.publish()
	g.complete(err)
}

// applyUpdates installs pending weights once no admitted request remains.
func (s *scheduler) applyUpdates() {
	s.updates = slices.DeleteFunc(s.updates, func(u *weightUpdate) bool {
		if err := u.ctx.Err(); err != nil {
			u.reply <- err
			return true
		}
		return false
	})
	if len(s.updates) == 0 || s.admitted > 0 {
		return
	}
	for _, u := range s.updates {
		copyWeights(s.e.params, u.w.Params)
		s.cache.Invalidate() // cached KV came from the old weights
		s.version++
		if u.w.Version != 0 {
			s.version = u.w.Version
		}
	}
	s.e.convertWeights() // the 16-bit copies Step reads, once for all updates
	for _, u := range s.updates {
		u.reply <- nil
	}
	s.updates = s.updates[:0]
	s.stats.WeightVersion = s.version
	s.publish()
}

func (s *scheduler) newID() int {
	if n := len(s.freeIDs); n > 0 {
		id := s.freeIDs[n-1]
		s.freeIDs = s.freeIDs[:n-1]
		return id
	}
	s.nextID++
	return s.nextID - 1
}

func (s *scheduler) freeID(id int) { s.freeIDs = append(s.freeIDs, id) }

// watermark is how many blocks admission leaves free for running
// sequences to grow into.
func (s *scheduler) watermark() int {
	if len(s.running) == 0 {
		return 0
	}
	return max(1, s.cache.NumBlocks()/100)
}

func (s *scheduler) publish() {
	s.stats.KVBlocksUsed = s.cache.UsedBlocks()
	s.stats.KVBlocksPeak = s.cache.PeakUsedBlocks()
	s.stats.KVBlocksCached = s.cache.CachedBlocks()
	s.e.mu.Lock()
	s.e.stats = s.stats
	s.e.mu.Unlock()
}

// runStep plans and runs one model step; false means there was nothing
// to run.
func (s *scheduler) runStep() bool {
	defer s.flush()
	s.step++
	s.resumePreempted()
	if len(s.updates) == 0 {
		s.admit()
	}
	plan := s.plan()
	if len(plan) == 0 {
		return false
	}
	b := s.batch(plan)
	logits := s.e.model.Step(b, s.cache)
	s.afterStep(plan, logits.Data, logits.Shape[1])
	s.stats.Steps++
	return true
}

// flush publishes the stats, then tells the callers of requests that
// finished, so a caller that reads Stats after its result sees them.
func (s *scheduler) flush() {
	s.publish()
	for _, g := range s.finished {
		g.complete(nil)
	}
	s.finished = s.finished[:0]
}

// batch lays the plan out as a model batch.
func (s *scheduler) batch(plan []plannedSeq) *model.Batch {
	b := &model.Batch{}
	for i := range plan {
		p := &plan[i]
		b.Seqs = append(b.Seqs, model.SeqSpan{ID: p.q.id, Start: p.q.cached, Len: p.n})
		b.Tokens = append(b.Tokens, p.q.tokens[p.q.cached:p.q.cached+p.n]...)
		p.logits = -1
		if p.q.cached+p.n == len(p.q.tokens) {
			p.logits = len(b.Logits)
			b.Logits = append(b.Logits, len(b.Tokens)-1)
		}
	}
	return b
}
