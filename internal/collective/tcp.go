package collective

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// OpError is a failed collective of a TCP Comm. After one, the group is
// broken: every rank's collectives fail (with ErrAborted and this error's
// text as the cause) until the group is connected anew.
type OpError struct {
	Op   string // "all-reduce", "reduce-scatter", "all-gather", "broadcast", "all-reduce-f64", "barrier"
	Rank int    // this rank
	Peer int    // the rank at the other end of the failed link; −1 when no link failed
	Addr string // Peer's data address
	Recv bool   // reading from Peer failed (←), else writing to it (→)
	Err  error
}

func (e *OpError) Error() string { return "collective: " + e.Op + ": " + e.where() }

// where is the message without the op: what travels to the other ranks.
func (e *OpError) where() string {
	if e.Peer < 0 {
		return fmt.Sprintf("rank %d: %v", e.Rank, e.Err)
	}
	arrow := "→"
	if e.Recv {
		arrow = "←"
	}
	return fmt.Sprintf("rank %d %s rank %d (%s): %v", e.Rank, arrow, e.Peer, e.Addr, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// ErrAborted is wrapped by the error of every collective that failed
// because the group broke: another rank's collective failed, a rank
// closed its Comm or was lost, or this rank failed an earlier one.
var ErrAborted = errors.New("collective: group aborted")

// abortError carries the first failure of the group, as text (it may
// come from another process).
type abortError struct{ cause string }

func (e abortError) Error() string        { return "aborted: " + e.cause }
func (e abortError) Is(target error) bool { return target == ErrAborted }

// causeOf is the text that the other ranks get for err.
func causeOf(err error) string {
	var op *OpError
	var ab abortError
	switch {
	case errors.As(err, &ab):
		return ab.cause
	case errors.As(err, &op):
		return op.where()
	}
	return err.Error()
}

// tcpComm is one rank of a ring over TCP: it writes to its successor
// next and reads from its predecessor prev, one connection each way, plus
// a control connection beside each on which a failure travels around the
// ring at once (so no rank waits out its timeout for a peer already lost).
type tcpComm struct {
	rank, size int
	opTimeout  time.Duration
	chunkBytes int
	next, prev *link
	seq        uint64         // collectives run so far (in each header)
	scratch    []byte         // the memory of memory.pool and memory.tmp, kept from one collective to the next
	watchers   sync.WaitGroup // the two control readers

	mu      sync.Mutex    // guards cur, broken and closed
	cur     *run          // the collective in flight, if any
	broken  error         // abortError: the group's first failure, then every collective's
	aborted chan struct{} // closed when broken is set
	closed  bool
}

// abortGrace is how long a rank whose collective failed waits for a
// neighbour's abort before it blames its own error: a peer that failed
// first (and aborted) shows up here as a stream out of step or closed,
// and its message is the better cause.
const abortGrace = 100 * time.Millisecond

// link is the connection pair to one neighbour.
type link struct {
	rank   int
	addr   string
	data   net.Conn // one way: to next, or from prev
	ctrl   net.Conn // both ways: abort and bye messages
	ctrlMu sync.Mutex
}

func (l *link) sendCtrl(kind byte, text string) {
	l.ctrlMu.Lock()
	defer l.ctrlMu.Unlock()
	l.ctrl.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = writeCtrl(l.ctrl, kind, text) // best effort: the peer may be gone
}

func newTCPComm(cfg Config, next, prev *link) *tcpComm {
	c := &tcpComm{rank: cfg.Rank, size: cfg.Size, opTimeout: cfg.OpTimeout, chunkBytes: cfg.ChunkBytes, next: next, prev: prev,
		aborted: make(chan struct{})}
	c.watchers.Add(2)
	go c.watch(next)
	go c.watch(prev)
	return c
}

func (c *tcpComm) Rank() int { return c.rank }
func (c *tcpComm) Size() int { return c.size }

// watch reads a neighbour's control connection: an abort message, or its
// end without a bye, breaks the group (unless this rank is closing). A
// bye does not: the neighbour closed after its last collective, whose
// data may still be on its way here (a rank that finishes first must not
// fail the others' last collective); a later collective that needs the
// neighbour fails on its closed data connection.
func (c *tcpComm) watch(l *link) {
	defer c.watchers.Done()
	kind, text, err := readCtrl(l.ctrl)
	var cause string
	switch {
	case err != nil:
		cause = fmt.Sprintf("rank %d (%s) lost: control connection: %v", l.rank, l.addr, err)
	case kind == ctrlBye:
		return
	default:
		cause = text
	}
	c.breakGroup(abortError{cause}, l)
}

// breakGroup records the group's first failure, fails the collective in
// flight and tells both neighbours (but from, which told us).
func (c *tcpComm) breakGroup(err error, from *link) {
	c.mu.Lock()
	if c.broken != nil || c.closed {
		c.mu.Unlock()
		return
	}
	ab := abortError{causeOf(err)}
	c.broken = ab
	close(c.aborted)
	cur := c.cur
	c.mu.Unlock()
	if cur != nil && cur.fail(&OpError{Op: cur.op.String(), Rank: c.rank, Peer: -1, Err: ab}) {
		c.interrupt()
	}
	for _, l := range []*link{c.prev, c.next} {
		if l != from {
			l.sendCtrl(ctrlAbort, ab.cause)
		}
	}
}

// interrupt unblocks the data reads and writes in flight.
func (c *tcpComm) interrupt() {
	past := time.Unix(1, 0)
	c.prev.data.SetDeadline(past)
	c.next.data.SetDeadline(past)
}

// Close says bye to both neighbours and closes every connection.
func (c *tcpComm) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for _, l := range []*link{c.prev, c.next} {
		l.sendCtrl(ctrlBye, "")
		errs = append(errs, l.data.Close(), l.ctrl.Close())
	}
	c.watchers.Wait()
	return ignoreClosed(errors.Join(errs...))
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// run is the state of one collective shared by its sender and receiver.
type run struct {
	op   opKind
	mu   sync.Mutex // guards the rest
	cond *sync.Cond
	sent int   // send steps done
	got  int   // receive steps done
	err  error // the first failure
	done bool  // the collective returned; later failures are ignored
}

// waitFor blocks until *count ≥ n (count is sent or got) or the run fails.
func (r *run) waitFor(count *int, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.err == nil && *count < n {
		r.cond.Wait()
	}
	return r.err
}

func (r *run) step(count *int) {
	r.mu.Lock()
	*count++
	r.cond.Broadcast()
	r.mu.Unlock()
}

// fail records err as the run's failure unless it already has one or is
// over; it reports whether it did (then the caller interrupts the I/O).
func (r *run) fail(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.err != nil {
		return false
	}
	r.err = err
	r.cond.Broadcast()
	return true
}

func (r *run) finish() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	return r.err
}

// begin starts a collective: it fails at once on a closed or broken
// Comm, and arms the op timeout and the caller's cancellation.
func (c *tcpComm) begin(ctx context.Context, op opKind) (*run, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	if c.broken != nil {
		return nil, nil, &OpError{Op: op.String(), Rank: c.rank, Peer: -1, Err: c.broken}
	}
	r := &run{op: op}
	r.cond = sync.NewCond(&r.mu)
	c.cur = r
	opCtx, cancel := context.WithTimeout(ctx, c.opTimeout)
	stop := context.AfterFunc(opCtx, func() {
		if r.fail(c.expired(ctx, r)) {
			c.interrupt()
		}
	})
	return r, func() { stop(); cancel() }, nil
}

// expired is the error of a collective whose context ended: the
// caller's, or the op timeout, blamed on the link still owing data.
func (c *tcpComm) expired(ctx context.Context, r *run) error {
	if err := ctx.Err(); err != nil {
		return &OpError{Op: r.op.String(), Rank: c.rank, Peer: -1, Err: err}
	}
	r.mu.Lock()
	sent, got := r.sent, r.got
	r.mu.Unlock()
	return &OpError{Op: r.op.String(), Rank: c.rank, Peer: c.prev.rank, Addr: c.prev.addr, Recv: true,
		Err: fmt.Errorf("timed out after %v (op timeout) with %d chunks received and %d sent", c.opTimeout, got, sent)}
}

// end closes a collective; a failed one breaks the group.
func (c *tcpComm) end(r *run, disarm func()) error {
	disarm()
	err := r.finish()
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	if err == nil {
		c.seq++
		return nil
	}
	if !errors.Is(err, ErrAborted) && !ownFault(err) {
		select {
		case <-c.aborted:
		case <-time.After(abortGrace):
		}
	}
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken != nil { // another rank failed first: its error is the cause
		if !errors.Is(err, ErrAborted) {
			err = &OpError{Op: r.op.String(), Rank: c.rank, Peer: -1, Err: broken}
		}
		return err
	}
	c.breakGroup(err, nil)
	return err
}

// argError is a collective called with bad arguments.
type argError struct{ error }

// ownFault reports a failure that this rank caused (bad arguments, its
// caller's context), which no peer's abort can explain.
func ownFault(err error) bool {
	var a argError
	return errors.As(err, &a) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// refuse fails a collective called with bad arguments. The group breaks
// too: the other ranks are already in the collective and would wait.
func (c *tcpComm) refuse(ctx context.Context, op opKind, err error) error {
	r, disarm, berr := c.begin(ctx, op)
	if berr != nil {
		return berr
	}
	r.fail(&OpError{Op: op.String(), Rank: c.rank, Peer: -1, Err: argError{err}})
	return c.end(r, disarm)
}

// memory resolves a plan's spans for one collective.
type memory[T elem] struct {
	buf, out []T
	pool     [2][]T // partial sums in flight
	tmp      []T    // the chunk being received before its add
}

func (m *memory[T]) at(s span) []T {
	switch s.at {
	case inBuf:
		return m.buf[s.off : s.off+s.n]
	case inOut:
		return m.out[s.off : s.off+s.n]
	}
	return m.pool[s.off][:s.n]
}

// collect runs one collective of plan p on buf (and out, reduce-scatter's
// shard): the sender walks p.sends in a goroutine, the receiver p.recvs
// in this one.
func collect[T elem](ctx context.Context, c *tcpComm, op opKind, buf, out []T, root int, p plan, chunk int) error {
	r, disarm, err := c.begin(ctx, op)
	if err != nil {
		return err
	}
	h := header{op: op, elem: uint8(elemSize[T]()), chunk: uint32(chunk), root: uint32(root), seq: c.seq, n: uint64(len(buf))}
	m := &memory[T]{buf: buf, out: out}
	if op != opAllGather && op != opBroadcast {
		n := min(chunk, (len(buf)+c.size-1)/c.size)
		if nb := 3 * n * elemSize[T](); len(c.scratch) < nb {
			c.scratch = make([]byte, nb)
		}
		s := viewAs[T](c.scratch)
		m.pool = [2][]T{s[:n:n], s[n : 2*n : 2*n]}
		m.tmp = s[2*n : 3*n : 3*n]
	}
	var wg sync.WaitGroup
	wg.Go(func() { sendAll(c, r, h, p, m) })
	recvAll(c, r, h, p, m)
	wg.Wait()
	return c.end(r, disarm)
}

func sendAll[T elem](c *tcpComm, r *run, h header, p plan, m *memory[T]) {
	if _, err := c.next.data.Write(h.encode()); err != nil {
		c.linkFailed(r, c.next, false, err)
		return
	}
	for _, s := range p.sends {
		if r.waitFor(&r.got, s.wait) != nil {
			return
		}
		if s.src.n > 0 {
			if _, err := c.next.data.Write(asBytes(m.at(s.src))); err != nil {
				c.linkFailed(r, c.next, false, err)
				return
			}
		}
		r.step(&r.sent)
	}
}

func recvAll[T elem](c *tcpComm, r *run, want header, p plan, m *memory[T]) {
	hb := make([]byte, 32)
	if _, err := io.ReadFull(c.prev.data, hb); err != nil {
		c.linkFailed(r, c.prev, true, err)
		return
	}
	if got, err := decodeHeader(hb); err != nil || got != want {
		if err == nil {
			err = fmt.Errorf("out of step: rank %d is in %v, this rank in %v", c.prev.rank, got, want)
		}
		if r.fail(&OpError{Op: r.op.String(), Rank: c.rank, Peer: c.prev.rank, Addr: c.prev.addr, Recv: true, Err: err}) {
			c.interrupt()
		}
		return
	}
	for _, s := range p.recvs {
		if r.waitFor(&r.sent, s.wait) != nil {
			return
		}
		if s.dst.n > 0 {
			dst := m.at(s.dst)
			in := dst
			if s.add {
				in = m.tmp[:s.dst.n]
			}
			if _, err := io.ReadFull(c.prev.data, asBytes(in)); err != nil {
				c.linkFailed(r, c.prev, true, err)
				return
			}
			if s.add {
				add(dst, in, m.at(s.own))
			}
		}
		r.step(&r.got)
	}
}

// add sets dst[i] = partial[i] + own[i]: one step of RingSum (dst may
// alias own).
func add[T elem](dst, partial, own []T) {
	own = own[:len(dst)]
	partial = partial[:len(dst)]
	for i := range dst {
		dst[i] = partial[i] + own[i]
	}
}

// linkFailed records a read or write error on l.
func (c *tcpComm) linkFailed(r *run, l *link, recv bool, err error) {
	what := "write"
	if recv {
		what = "read"
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("connection closed (%w)", err)
		}
	}
	if r.fail(&OpError{Op: r.op.String(), Rank: c.rank, Peer: l.rank, Addr: l.addr, Recv: recv, Err: fmt.Errorf("%s: %w", what, err)}) {
		c.interrupt()
	}
}

// The collectives.

func (c *tcpComm) chunk(elemBytes int) int { return c.chunkBytes / elemBytes }

func (c *tcpComm) AllReduce(ctx context.Context, buf []float32) error {
	ch := c.chunk(4)
	return collect(ctx, c, opAllReduce, buf, nil, 0, planAllReduce(len(buf), c.size, c.rank, ch), ch)
}

func (c *tcpComm) ReduceScatter(ctx context.Context, buf, shard []float32) error {
	if want := Partition(len(buf), c.size)[c.rank].Len(); len(shard) != want {
		return c.refuse(ctx, opReduceScatter, fmt.Errorf("shard has %d values, its range of %d %d", len(shard), len(buf), want))
	}
	ch := c.chunk(4)
	return collect(ctx, c, opReduceScatter, buf, shard, 0, planReduceScatter(len(buf), c.size, c.rank, ch), ch)
}

func (c *tcpComm) AllGather(ctx context.Context, shard, buf []float32) error {
	r := Partition(len(buf), c.size)[c.rank]
	if len(shard) != r.Len() {
		return c.refuse(ctx, opAllGather, fmt.Errorf("shard has %d values, its range of %d %d", len(shard), len(buf), r.Len()))
	}
	copy(buf[r.Lo:r.Hi], shard)
	ch := c.chunk(4)
	return collect(ctx, c, opAllGather, buf, nil, 0, planAllGather(len(buf), c.size, c.rank, ch), ch)
}

func (c *tcpComm) Broadcast(ctx context.Context, buf []float32, root int) error {
	if root < 0 || root >= c.size {
		return c.refuse(ctx, opBroadcast, fmt.Errorf("root %d out of range [0, %d)", root, c.size))
	}
	ch := c.chunk(4)
	return collect(ctx, c, opBroadcast, buf, nil, root, planBroadcast(len(buf), c.size, c.rank, root, ch), ch)
}

func (c *tcpComm) AllReduceF64(ctx context.Context, buf []float64) error {
	ch := c.chunk(8)
	return collect(ctx, c, opAllReduceF64, buf, nil, 0, planAllReduce(len(buf), c.size, c.rank, ch), ch)
}

// Barrier is an all-reduce of one value per rank: no rank can finish it
// before every rank has sent its part.
func (c *tcpComm) Barrier(ctx context.Context) error {
	ch := c.chunk(8)
	return collect(ctx, c, opBarrier, make([]float64, c.size), nil, 0, planAllReduce(c.size, c.size, c.rank, ch), ch)
}

var _ Comm = (*tcpComm)(nil)
