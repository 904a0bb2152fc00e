package generate

import (
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/par"
)

// admit moves waiting requests into the running set while they fit.
// Preempted sequences go first: nothing new is admitted while one waits.
func (s *scheduler) admit() {
	cfg := s.e.cfg
	for len(s.waiting) > 0 && len(s.resume) == 0 {
		g := s.waiting[0]
		n := g.req.Params.N
		if s.slots+n > cfg.MaxSeqs || s.pendingPrefill() >= cfg.MaxBatchTokens {
			return
		}
		share := n > 1 && !cfg.NoPrefixSharing
		copies := n
		if share {
			copies = 1
		}
		// with prefix caching, the prompt's cached blocks are adopted, not
		// allocated (idle ones still leave the free capacity)
		hit, keys := s.cache.Match(g.req.Prompt)
		need := copies*(s.cache.blocksFor(len(g.req.Prompt))-len(hit)) + s.cache.IdleAmong(hit)
		if need > s.cache.FreeBlocks()-s.watermark() {
			return
		}
		if s.cache.PrefixCaching() {
			s.stats.PrefixQueryTokens += copies * len(g.req.Prompt)
			s.stats.PrefixHitTokens += copies * len(hit) * s.cache.BlockSize()
		}
		s.waiting = s.waiting[1:]
		g.admitted, g.order, g.version, g.live = true, s.order, s.version, n
		s.order++
		for i := 0; i < n; i++ {
			g.samples = append(g.samples, newSampleState(&g.req.Params, g.req.Prompt, i, s.version))
		}
		for c := 0; c < copies; c++ {
			q := &seq{id: s.newID(), g: g, sample: c, tokens: slices.Clone(g.req.Prompt)}
			if share {
				q.sample = -1
			}
			if len(hit) > 0 {
				s.cache.Adopt(q.id, hit, keys)
				q.cached = len(hit) * s.cache.BlockSize()
			}
			if err := s.cache.Reserve(q.id, q.cached, len(q.tokens)-q.cached); err != nil {
				panic("generate: admission reserved blocks it had counted: " + err.Error())
			}
			s.running = append(s.running, q)
		}
		s.slots += n
		s.admitted++
	}
}

// pendingPrefill is the number of prompt tokens running sequences will
// feed in the next step before a newcomer gets its share: what each still
// has to feed, up to MaxPrefillChunk. A long prompt counts one chunk, so
// requests behind it are admitted and prefilled beside it.
func (s *scheduler) pendingPrefill() int {
	n := 0
	for _, q := range s.running {
		if r := q.remaining(); r > 1 {
			n += min(r, s.e.cfg.MaxPrefillChunk)
		}
	}
	return n
}

// resumePreempted brings preempted sequences back, oldest first, while
// their blocks fit.
func (s *scheduler) resumePreempted() {
	for len(s.resume) > 0 {
		q := s.resume[0]
		shared, adopted := s.sharePrompt(q), 0
		if shared == 0 {
			adopted = s.adoptCached(q)
		}
		need := s.cache.Needed(q.id, q.cached, len(q.tokens)-q.cached)
		if need > s.cache.FreeBlocks()-s.watermark() {
			if q.cached > 0 {
				s.cache.Release(q.id)
				q.cached = 0
			}
			return
		}
		if err := s.cache.Reserve(q.id, q.cached, len(q.tokens)-q.cached); err != nil {
			panic("generate: resume reserved blocks it had counted: " + err.Error())
		}
		if s.cache.PrefixCaching() && shared == 0 {
			s.stats.PrefixQueryTokens += len(q.tokens)
			s.stats.PrefixHitTokens += adopted
		}
		s.resume = s.resume[1:]
		q.evicted = false
		at, _ := slices.BinarySearchFunc(s.running, q, olderFirst)
		s.running = slices.Insert(s.running, at, q)
	}
}

// sharePrompt gives a resuming sample the full prompt blocks of a running
// sibling (their keys and values are identical) and returns how many.
func (s *scheduler) sharePrompt(q *seq) int {
	if s.e.cfg.NoPrefixSharing || q.sample < 0 {
		return 0
	}
	full := len(q.g.req.Prompt) / s.cache.BlockSize()
	for _, sib := range s.running {
		if sib.g == q.g && !sib.evicted && sib.cached >= full*s.cache.BlockSize() && full > 0 {
			s.cache.Share(sib.id, q.id, full)
			q.cached = full * s.cache.BlockSize()
			return full
		}
	}
	return 0
}

// adoptCached gives a resuming sequence the cached blocks that hold a
// prefix of its tokens (prefix caching; its own, if not evicted since)
// and returns how many tokens they hold.
func (s *scheduler) adoptCached(q *seq) int {
	if hit, keys := s.cache.Match(q.tokens); len(hit) > 0 {
		s.cache.Adopt(q.id, hit, keys)
		q.cached = len(hit) * s.cache.BlockSize()
	}
	return q.cached
}

// olderFirst orders sequences by request age, then sample index.
func olderFirst(a, b *seq) int {
	if a.g.order != b.g.order {
		if a.g.order < b.g.order {
			return -1
		}
		return 1
	}
	return a.sample - b.sample
}

// plan picks the step's work within MaxBatchTokens: one token for every
// sequence in decode, then a prompt chunk of up to MaxPrefillChunk tokens
// for every sequence in prefill, oldest first, then what budget is left
// to the oldest prefills again. A long prompt so shares each step with
// the decodes and the shorter prompts admitted after it instead of
// holding them back for its whole prefill; prompts no longer than the
// chunk are planned exactly as without it. It preempts when blocks run
// out.
func (s *scheduler) plan() []plannedSeq {
	budget := s.e.cfg.MaxBatchTokens
	var plan []plannedSeq
	for _, decode := range []bool{true, false} {
		limit := budget
		if !decode {
			limit = s.e.cfg.MaxPrefillChunk
		}
		for i := 0; i < len(s.running) && budget > 0; i++ {
			q := s.running[i]
			if q.evicted || q.done || q.planned == s.step || (q.remaining() == 1) != decode {
				continue
			}
			n := min(q.remaining(), budget, limit)
			if !s.reserve(q, n) {
				continue
			}
			q.planned = s.step
			plan = append(plan, plannedSeq{q: q, n: n})
			budget -= n
		}
	}
	s.extendPrefills(plan, budget)
	s.running = slices.DeleteFunc(s.running, func(q *seq) bool { return q.evicted || q.done })
	return slices.DeleteFunc(plan, func(p plannedSeq) bool { return p.q.evicted || p.q.done })
}

// extendPrefills gives the budget the chunks left over to the planned
// prefills that have more to feed, oldest first.
func (s *scheduler) extendPrefills(plan []plannedSeq, budget int) {
	for i := 0; i < len(plan) && budget > 0; i++ {
		p := &plan[i]
		extra := min(p.q.remaining()-p.n, budget)
		if p.q.evicted || p.q.done || extra <= 0 || !s.reserve(p.q, p.n+extra) {
			continue
		}
		p.n += extra
		budget -= extra
	}
}

// reserve makes room for q's next n tokens, preempting the youngest
// sequences as needed. It returns false if q itself was preempted or
// finished instead.
func (s *scheduler) reserve(q *seq, n int) bool {
	for s.cache.Reserve(q.id, q.cached, n) != nil {
		v := s.youngest()
		if v == q {
			if s.onlyHolder(q) { // the whole cache cannot hold it
				s.finishForCapacity(q)
				return false
			}
			s.preempt(q)
			return false
		}
		s.preempt(v)
	}
	return true
}

// youngest is the most recently admitted live sequence.
func (s *scheduler) youngest() *seq {
	for i := len(s.running) - 1; i >= 0; i-- {
		if q := s.running[i]; !q.evicted && !q.done {
			return q
		}
	}
	return nil
}

// onlyHolder reports whether q is the only live running sequence.
func (s *scheduler) onlyHolder(q *seq) bool {
	for _, o := range s.running {
		if o != q && !o.evicted && !o.done {
			return false
		}
	}
	return true
}

// preempt releases q's blocks and queues it for recomputation.
func (s *scheduler) preempt(q *seq) {
	s.cache.Release(q.id)
	q.cached, q.evicted = 0, true
	at, _ := slices.BinarySearchFunc(s.resume, q, olderFirst)
	s.resume = slices.Insert(s.resume, at, q)
	s.stats.Preemptions++
}

// finishForCapacity ends a sample that cannot grow in an otherwise empty
// cache. A prompt parent cannot get here: admission checks prompts fit.
func (s *scheduler) finishForCapacity(q *seq) {
	st := q.g.samples[max(q.sample, 0)]
	st.finish(FinishLength, &s.e.rules)
	s.emit(q, st, sampled{}, false)
	s.finishSeq(q)
}

// job is one sample to draw after a step.
type job struct {
	q   *seq
	st  *sampleState
	row []float32
}

// afterStep advances the sequences of a step, forks prompt parents into
// their samples, draws every next token (in parallel: each sample owns
// its generator) and reports tokens and finished samples.
func (s *scheduler) afterStep(plan []plannedSeq, logits []float32, vocab int) {
	var jobs []job
	forked := map[*seq][]*seq{}
	for _, p := range plan {
		q := p.q
		s.stats.PromptTokens += max(0, min(q.cached+p.n, len(q.g.req.Prompt))-q.cached)
		q.cached += p.n
		s.cache.Commit(q.id, q.tokens, q.cached)
		if p.logits < 0 {
			continue
		}
		row := logits[p.logits*vocab : (p.logits+1)*vocab]
		if q.sample >= 0 {
			jobs = append(jobs, job{q, q.g.samples[q.sample], row})
			continue
		}
		kids := s.fork(q)
		forked[q] = kids
		for _, k := range kids {
			jobs = append(jobs, job{k, q.g.samples[k.sample], row})
		}
	}
	if len(forked) > 0 { // the samples take their parent's place (and age)
		next := make([]*seq, 0, len(s.running)+len(jobs))
		for _, q := range s.running {
			if kids, ok := forked[q]; ok {
				next = append(next, kids...)
			} else {
				next = append(next, q)
			}
		}
		s.running = next
	}
	s.draw(jobs)
	for _, j := range jobs {
		s.emit(j.q, j.st, j.last(), true)
		if j.st.done {
			s.finishSeq(j.q)
		}
	}
	s.running = slices.DeleteFunc(s.running, func(q *seq) bool { return q.done })
}

// last returns the token the job just drew, as the event reports it.
func (j job) last() sampled {
	c := &j.st.comp
	i := len(c.Tokens) - 1
	x := sampled{token: c.Tokens[i], logProb: c.LogProbs[i], raw: c.RawLogProbs[i]}
	if c.TopLogProbs != nil {
		x.top = c.TopLogProbs[i]
	}
	return x
}

// fork turns a prefilled prompt parent into its n samples, which share
// all of its blocks (the last, partial one is copied on first write).
func (s *scheduler) fork(parent *seq) []*seq {
	g := parent.g
	nb := s.cache.blocksFor(parent.cached)
	kids := make([]*seq, g.req.Params.N)
	for i := range kids {
		k := &seq{id: s.newID(), g: g, sample: i, tokens: slices.Clone(parent.tokens), cached: parent.cached, planned: parent.planned}
		s.cache.Share(parent.id, k.id, nb)
		kids[i] = k
	}
	s.cache.Release(parent.id)
	s.freeID(parent.id)
	parent.done = true
	return kids
}

// draw samples every job's next token and applies the stop rules.
func (s *scheduler) draw(jobs []job) {
	rules := &s.e.rules
	par.For(len(jobs), 16, func(lo, hi int) {
		var sm sampler
		for _, j := range jobs[lo:hi] {
			x := sm.sample(j.row, j.st.params, j.st.draw())
			j.q.tokens = append(j.q.tokens, x.token)
			j.st.accept(x, len(j.q.tokens), rules)
		}
	})
	s.stats.GeneratedTokens += len(jobs)
}

// emit reports one token (if any) and, when the sample is done, its
// completion.
func (s *scheduler) emit(q *seq, st *sampleState, x sampled, token bool) {
	g := q.g
	if token && g.ttft == 0 {
		g.ttft = time.Since(g.submitted)
	}
	if g.events == nil || (!token && !st.done) {
		return
	}
	ev := Event{Index: st.comp.Index, Token: x.token, LogProb: x.logProb, RawLogProb: x.raw, Top: x.top, Done: st.done}
	if !token {
		ev.Token = -1
	}
	if st.done {
		c := st.comp
		ev.Completion = &c
	}
	g.events.push(ev)
}

// finishSeq releases a finished sample's sequence and completes its
// request when it was the last one.
func (s *scheduler) finishSeq(q *seq) {
	s.cache.Release(q.id)
	s.freeID(q.id)
	q.done = true
	s.slots--
	g := q.g
	if g.live--; g.live == 0 {
		s.admitted--
		s.finished = append(s.finished, g)
	}
}
