package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A team is Threads()−1 long-lived worker goroutines that For hands its
// chunks to. Starting a goroutine per chunk costs little, but waking an
// idle OS thread for it costs a futex round trip (tens of microseconds in
// a VM), paid twice per loop, hundreds of times per training step. Team
// workers instead spin for a short while after each chunk, so the next
// loop finds them awake, then park until the one after. The chunking is
// For's, so results keep their bits.
type team struct {
	busy    atomic.Bool // held by the For running on the team
	closed  atomic.Bool // SetThreads replaced this team
	workers []*worker
	// procs is GOMAXPROCS when the team was made, read once here rather
	// than per loop (the call takes the scheduler's lock). A later change
	// only costs speed: waiting sides yield, so a worker without a P of its
	// own still gets one.
	procs int
}

type worker struct {
	// state is seq<<1 | parked: the count of jobs posted, and whether the
	// worker sleeps on wake. One word, so posting and parking are ordered
	// by the word's own atomic read-modify-writes: a protocol over two
	// words needs store→load ordering between them, which qemu's arm64
	// emulation was seen to break (a lost wake-up hung a test).
	state atomic.Uint64
	done  atomic.Uint64 // set to seq by the worker when the job ran
	job   func()        // written before seq is bumped
	wake  chan struct{} // capacity 1: a wake-up is never lost
}

// seq is the number of jobs posted to w.
func (w *worker) seq() uint64 { return w.state.Load() >> 1 }

// DefaultSpin is how long a worker looks for its next job before it
// parks: longer than the serial gaps between the loops of one training
// step (on the bench GPT, 5 µs of spinning gave back a third of the gain,
// 60–200 µs all of it), far shorter than a pause between steps.
const DefaultSpin = 100 * time.Microsecond

var spinNs atomic.Int64

func init() { spinNs.Store(int64(DefaultSpin)) }

// SetSpin sets how long idle workers spin before they park (d ≤ 0: they
// park at once, as plain goroutines would). Spinning uses a core that is
// otherwise idle; where several processes share the cores, it takes CPU
// from the others, so such deployments may want 0.
func SetSpin(d time.Duration) { spinNs.Store(max(int64(d), 0)) }

// Spin returns the current spin time.
func Spin() time.Duration { return time.Duration(spinNs.Load()) }

var (
	current atomic.Pointer[team]
	teamMu  sync.Mutex // serialises making teams
)

// getTeam returns the team of n workers, making it (and retiring the
// previous one) when there is none of that size.
func getTeam(n int) *team {
	if t := current.Load(); t != nil && len(t.workers) == n {
		return t
	}
	teamMu.Lock()
	defer teamMu.Unlock()
	if t := current.Load(); t != nil && len(t.workers) == n {
		return t
	}
	t := &team{workers: make([]*worker, n), procs: runtime.GOMAXPROCS(0)}
	for i := range t.workers {
		w := &worker{wake: make(chan struct{}, 1)}
		t.workers[i] = w
		go w.loop(t)
	}
	if old := current.Swap(t); old != nil {
		go old.close()
	}
	return t
}

// close waits until no For runs on the team, takes it for good and lets
// its workers exit.
func (t *team) close() {
	for !t.busy.CompareAndSwap(false, true) {
		runtime.Gosched()
	}
	t.closed.Store(true)
	for _, w := range t.workers {
		w.post(func() {})
	}
}

// post hands fn to the worker and wakes it if it parked.
func (w *worker) post(fn func()) {
	w.job = fn
	if w.state.Add(2)&1 != 0 { // parked (or about to block): wake it
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

func (w *worker) loop(t *team) {
	var last uint64
	for {
		w.await(last)
		last = w.seq()
		w.job()
		w.job = nil
		w.done.Store(last)
		if t.closed.Load() {
			return
		}
	}
}

// await returns once a job newer than last is posted: spinning for
// Spin() (yielding now and then, so goroutines waiting for this P still
// run), then parked. (Yielding 16× less often measured the same.)
func (w *worker) await(last uint64) {
	start := time.Now()
	for i := 1; w.seq() == last; i++ {
		if i%256 != 0 && spinNs.Load() > 0 {
			continue
		}
		runtime.Gosched()
		if time.Since(start) < time.Duration(spinNs.Load()) {
			continue
		}
		if w.state.CompareAndSwap(last<<1, last<<1|1) { // no job since: sleep
			<-w.wake // sent by the post that saw the parked bit (or an earlier, spare one)
			w.state.And(^uint64(1))
		}
		start = time.Now()
	}
}

// runTeam runs fn over For's chunks of chunk items on the team: chunk 0
// on the caller, chunk i on worker i−1. It returns false, having run
// nothing, when the team is busy (a nested or concurrent For).
func runTeam(n, chunk int, fn func(lo, hi int)) bool {
	w := (n + chunk - 1) / chunk // For's chunk count: at most Threads()
	t := getTeam(Threads() - 1)
	if len(t.workers)+1 > t.procs { // more workers than Ps: spinning would starve them
		return false
	}
	if w-1 > len(t.workers) || !t.busy.CompareAndSwap(false, true) {
		return false
	}
	for i := 1; i < w; i++ {
		lo, hi := i*chunk, min((i+1)*chunk, n)
		t.workers[i-1].post(func() { fn(lo, hi) })
	}
	defer func() { // also when the caller's chunk panics: no job may be overwritten
		for _, wk := range t.workers[:w-1] {
			for s := 0; wk.done.Load() != wk.seq(); s++ {
				if s%64 == 63 {
					runtime.Gosched()
				}
			}
		}
		t.busy.Store(false)
	}()
	fn(0, min(chunk, n))
	return true
}
