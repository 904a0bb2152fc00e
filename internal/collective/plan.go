package collective

// A plan is one rank's part of a ring collective, written out as two
// lists: what it sends to its successor and what it receives from its
// predecessor, one chunk per step, with the order constraints between
// the two lists. The sender and the receiver of a TCP rank walk their
// lists in two goroutines, so a chunk's add overlaps the next chunk's
// transfer.
//
// Steps go chunk-major (for chunk j: every ring step of j, then chunk
// j+1), as NCCL's ring loops do: a partial sum lives in a scratch slot
// for one step only, so two slots of one chunk suffice whatever the
// buffer's size. Rank r's send list equals rank r+1's receive list step
// for step, and in the ring collectives every wait points at a step of
// smaller index in the other list; the ring can then never deadlock,
// whatever the sockets buffer (a blocked rank always waits on a smaller
// step of some rank, and the smallest step can always run).

// place says which memory a span of a plan lies in.
type place uint8

const (
	inBuf  place = iota // the caller's buffer
	inOut               // reduce-scatter's output shard (offsets relative to it)
	inPool              // a scratch slot of one chunk; off is the slot (0 or 1)
)

// span is n values at off in a place.
type span struct {
	at     place
	off, n int
}

// sendStep writes src to the successor once wait receive steps are done.
type sendStep struct {
	src  span
	wait int
}

// recvStep reads dst.n values from the predecessor into dst — plus own,
// value by value, if add — once wait send steps are done.
type recvStep struct {
	dst, own span
	add      bool
	wait     int
}

type plan struct {
	sends []sendStep
	recvs []recvStep
}

// planner appends steps and derives their waits: a send waits for the
// receive that last wrote its span, a receive for the send that last
// read its destination (regions are whole chunks, equal or disjoint).
type planner struct {
	plan
	lastWrite map[region]int // region → receive steps that must be done
	lastRead  map[region]int // region → send steps that must be done
}

type region struct {
	at  place
	off int
}

func newPlanner() *planner {
	return &planner{lastWrite: map[region]int{}, lastRead: map[region]int{}}
}

func (p *planner) send(src span) {
	if src.n == 0 { // nothing moves; keeps the lists aligned
		p.sends = append(p.sends, sendStep{src: src})
		return
	}
	k := region{src.at, src.off}
	p.sends = append(p.sends, sendStep{src, p.lastWrite[k]})
	p.lastRead[k] = len(p.sends)
}

func (p *planner) recv(dst, own span, add bool) {
	if dst.n == 0 {
		p.recvs = append(p.recvs, recvStep{dst: dst})
		return
	}
	k := region{dst.at, dst.off}
	p.recvs = append(p.recvs, recvStep{dst, own, add, p.lastRead[k]})
	p.lastWrite[k] = len(p.recvs)
}

// chunkOf is chunk j of r: [r.Lo + j·c, r.Lo + (j+1)·c) clipped to r
// (empty past its end).
func chunkOf(r Range, j, c int) Range {
	lo := min(r.Lo+j*c, r.Hi)
	return Range{lo, min(lo+c, r.Hi)}
}

// chunks is how many chunks of c values cover n values (at least 1, so
// that an empty buffer still has one, empty, step per ring step).
func chunks(n, c int) int {
	return max(1, (n+c-1)/c)
}

func mod(a, n int) int { return ((a % n) + n) % n }

// reduceScatter plans a ring reduce-scatter of the caller's buffer over
// parts. At step t rank r sends shard r−1−t and receives shard r−2−t,
// adding its own values: the partial sum of shard s starts at rank s+1
// and ends, complete, at rank s — RingOrder(s). Partials go to scratch
// slots; the complete shard to final (the output shard, or the buffer).
func (p *planner) reduceScatter(parts []Range, rank, c int, final func(Range) span) {
	size := len(parts)
	slot := 0
	for j := range chunks(parts[0].Len(), c) {
		var partial span // what step t−1 received, sent on at step t
		for t := range size - 1 {
			if t == 0 {
				s := chunkOf(parts[mod(rank-1, size)], j, c)
				p.send(span{inBuf, s.Lo, s.Len()})
			} else {
				p.send(partial)
			}
			r := chunkOf(parts[mod(rank-2-t, size)], j, c)
			var dst span
			if t == size-2 {
				dst = final(r)
			} else {
				dst = span{inPool, slot, r.Len()}
				if r.Len() > 0 {
					slot ^= 1
				}
			}
			p.recv(dst, span{inBuf, r.Lo, r.Len()}, true)
			partial = dst
		}
	}
}

// allGather plans a ring all-gather in the caller's buffer: at step t
// rank r sends shard r−t (its own first) and receives shard r−1−t.
func (p *planner) allGather(parts []Range, rank, c int) {
	size := len(parts)
	for j := range chunks(parts[0].Len(), c) {
		for t := range size - 1 {
			s := chunkOf(parts[mod(rank-t, size)], j, c)
			p.send(span{inBuf, s.Lo, s.Len()})
			r := chunkOf(parts[mod(rank-1-t, size)], j, c)
			p.recv(span{inBuf, r.Lo, r.Len()}, span{}, false)
		}
	}
}

// broadcast plans a pipelined chain from root around the ring: every
// rank but root receives each chunk and, unless its successor is root,
// passes it on as soon as it has it.
func (p *planner) broadcast(n, size, rank, root, c int) {
	all := Range{0, n}
	for j := range chunks(n, c) {
		ch := chunkOf(all, j, c)
		if rank != root {
			p.recv(span{inBuf, ch.Lo, ch.Len()}, span{}, false)
		}
		if mod(rank+1, size) != root {
			p.send(span{inBuf, ch.Lo, ch.Len()})
		}
	}
}

// Plans of the collectives (size ≥ 2; c is the chunk in values).

func planAllReduce(n, size, rank, c int) plan {
	parts := Partition(n, size)
	p := newPlanner()
	p.reduceScatter(parts, rank, c, func(r Range) span { return span{inBuf, r.Lo, r.Len()} })
	p.allGather(parts, rank, c)
	return p.plan
}

func planReduceScatter(n, size, rank, c int) plan {
	parts := Partition(n, size)
	p := newPlanner()
	lo := parts[rank].Lo
	p.reduceScatter(parts, rank, c, func(r Range) span { return span{inOut, r.Lo - lo, r.Len()} })
	return p.plan
}

func planAllGather(n, size, rank, c int) plan {
	p := newPlanner()
	p.allGather(Partition(n, size), rank, c)
	return p.plan
}

func planBroadcast(n, size, rank, root, c int) plan {
	p := newPlanner()
	p.broadcast(n, size, rank, root, c)
	return p.plan
}
