package generate

import (
	"context"
	"sync"
	"time"
)

// group is one request inside the engine: its samples, their sequences
// and how the caller hears about them. Fields other than finished, err
// and the completions are touched only by the scheduler goroutine.
type group struct {
	req       Request // Params with defaults filled in
	ctx       context.Context
	submitted time.Time
	ttft      time.Duration
	order     uint64 // admission order (older = smaller)
	admitted  bool
	version   int64
	samples   []*sampleState
	seqs      []*seq // live sequences (a prompt parent, or one per unfinished sample)
	live      int    // samples not finished
	events    *eventQueue
	finished  chan struct{} // closed when done; err then says how
	err       error
}

// result assembles the Result (call after finished is closed, err nil).
func (g *group) result() Result {
	r := Result{ID: g.req.ID, PromptTokens: len(g.req.Prompt), TimeToFirstToken: g.ttft}
	for _, s := range g.samples {
		r.Completions = append(r.Completions, s.comp)
	}
	return r
}

// complete ends the group with err (nil: success) and tells the caller.
func (g *group) complete(err error) {
	g.err = err
	if g.events != nil {
		if err != nil {
			g.events.push(Event{Err: err})
		}
		g.events.close()
	}
	close(g.finished)
}

// eventQueue hands a stream's events from the scheduler to the reader
// without ever blocking the scheduler.
type eventQueue struct {
	mu     sync.Mutex // guards items and closed
	items  []Event
	closed bool
	signal chan struct{} // capacity 1: "something changed"
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	q.wake()
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *eventQueue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pump moves events to out until the queue is closed and drained, or ctx
// ends; then it closes out.
func (q *eventQueue) pump(ctx context.Context, out chan<- Event) {
	defer close(out)
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		if len(items) == 0 {
			if closed {
				return
			}
			select {
			case <-q.signal:
			case <-ctx.Done():
				return
			}
			continue
		}
		for _, ev := range items {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}
}
