package gemm

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/gorlhf/gorlhf/internal/par"
)

// microFunc computes one register tile: C = alpha·Ap·B + beta·C, where Ap
// holds kc steps of mr values (packed, k-major), B holds kc rows of nr
// values ldb floats apart (a packed panel has ldb == nr; ragged panels are
// zero-padded to nr), and C is the top-left rows×cols corner of an mr×nr
// tile at c[0] with row stride ldc. Nothing outside that corner may be
// written, and beta == 0 must not read C.
type microFunc func(kc, rows, cols int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32)

// blocked is a cache-blocked GEMM in the BLIS style, mirrored for row-major
// C: B is packed in kc×nc blocks that stay in L2 and are shared by all
// workers; each worker packs one mr×kc slice of A (it stays in L1) and runs
// the micro-kernel across the block's nr-wide panels of B. When C has only a
// few row tiles, B is not packed up front (see bMode), and a kernel with a
// dot path takes x·Wᵀ for small m (see dot.go).
//
// The tiling and the path depend only on the shape, never on the thread
// count, and each C element is summed over k in blocks of kc in increasing
// order, so results are bit-identical for any number of threads.
type blocked struct {
	name    string
	mr, nr  int // register tile
	kc, nc  int // cache blocks of k and n
	micro   microFunc
	asmPack bool    // pack with the AVX 8×8 transpose (see pack.go)
	dot     dotFunc // optional: small m with B transposed (see dot.go)
	dotMaxM int     // largest m sent to dot
}

func (d *blocked) Name() string { return d.name }

func (d *blocked) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(d.name, transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	d.run(&call{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc}, true)
}

func (d *blocked) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(d.name, transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	d.run(&call{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc}, false)
}

// call holds the arguments of one Sgemm call.
type call struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
}

// parallelMin is the work (multiply-adds of one block) below which a block
// runs on the calling goroutine. Waking a second worker costs several µs, so
// splitting only pays for blocks of tens of µs; 1<<20 multiply-adds take
// about 10 µs on one AVX-512 core.
const parallelMin = 1 << 20

func (d *blocked) run(g *call, parallel bool) {
	if g.m == 0 || g.n == 0 {
		return
	}
	if g.k == 0 || g.alpha == 0 {
		scaleC(g.m, g.n, g.beta, g.c, g.ldc)
		return
	}
	if d.dot != nil && g.transB && g.m <= d.dotMaxM {
		d.runDot(g, parallel)
		return
	}
	for jc := 0; jc < g.n; jc += d.nc {
		nc := min(d.nc, g.n-jc)
		for pc := 0; pc < g.k; pc += d.kc {
			kc := min(d.kc, g.k-pc)
			beta := g.beta
			if pc > 0 {
				beta = 1 // later k blocks accumulate onto the first
			}
			d.block(g, jc, nc, pc, kc, beta, parallel && g.m*nc*kc >= parallelMin)
		}
	}
}

// fewTiles is the most row tiles for which B is not packed up front. A
// packed block pays off only when several row tiles reuse it; with fewer, an
// untransposed B is read in place and a transposed one is packed one panel
// at a time into a buffer that stays in L1 (decoding: m = batch size).
const fewTiles = 2

// bMode says how a block of B reaches the micro-kernel.
type bMode int

const (
	bPacked bMode = iota // the whole block packed up front, shared by workers
	bDirect              // untransposed B read in place
	bLazy                // each worker packs one panel at a time
)

// block multiplies the k range [pc, pc+kc) into the columns [jc, jc+nc).
func (d *blocked) block(g *call, jc, nc, pc, kc int, beta float32, parallel bool) {
	panels := ceilDiv(nc, d.nr)
	tiles := ceilDiv(g.m, d.mr)
	bl := &bBlock{jc: jc, nc: nc, pc: pc, kc: kc, nr: d.nr, fullPanels: nc / d.nr}
	switch {
	case tiles <= fewTiles && !g.transB:
		bl.mode = bDirect
		if bl.fullPanels < panels { // the ragged last panel is packed, zero-padded
			bl.packed = getBuf(kc * d.nr)
			d.packPanel(g, bl, bl.packed, bl.fullPanels)
		}
	case tiles <= fewTiles:
		bl.mode = bLazy
	default:
		bl.packed = getBuf(panels * kc * d.nr)
	}
	defer func() {
		if bl.packed != nil {
			putBuf(bl.packed)
		}
	}()
	if bl.mode != bPacked {
		// Few row tiles: split the panels; each worker packs all of A.
		spread(panels, 1, parallel, func() (func(lo, hi int), func()) {
			w := newWorker(d, g, bl, beta, tiles)
			return func(lo, hi int) {
				for jp := lo; jp < hi; jp++ {
					b, ldb := w.panel(jp)
					for t := range tiles {
						w.run(t, jp, b, ldb)
					}
				}
			}, w.release
		})
		return
	}
	// Split the packing by panel for a transposed B (each panel is a
	// transpose of nr stored rows) and by k step for an untransposed one
	// (each k step is one stored row).
	packItems, packGrain := panels, 4
	packPanels := func(lo, hi int) {
		for jp := lo; jp < hi; jp++ {
			d.packPanel(g, bl, bl.packed[jp*kc*d.nr:(jp+1)*kc*d.nr], jp)
		}
	}
	if !g.transB {
		packItems, packGrain = kc, 16
		packPanels = func(lo, hi int) {
			packBRows(bl.packed, g.b, g.ldb, pc, kc, jc, nc, d.nr, lo, hi)
		}
	}
	spread(packItems, packGrain, parallel, func() (func(lo, hi int), func()) {
		return packPanels, func() {}
	})
	groups := d.columnGroups(tiles, panels, parallel)
	spread(tiles*groups, 1, parallel, func() (func(lo, hi int), func()) {
		w := newWorker(d, g, bl, beta, 1)
		return func(lo, hi int) {
			for it := lo; it < hi; it++ {
				t, grp := it/groups, it%groups
				for jp := grp * panels / groups; jp < (grp+1)*panels/groups; jp++ {
					b, ldb := w.panel(jp)
					w.run(t, jp, b, ldb)
				}
			}
		}, w.release
	})
}

// spread calls a worker's chunk function for every chunk of grain items in
// [0, n), on up to par.Threads() workers when parallel. Workers take the
// next chunk from a shared counter instead of a fixed share, so a worker
// slowed by another process (these machines are often shared) does not hold
// up the rest. Who computes a chunk never changes how it is computed.
// start makes one worker's chunk function and its cleanup.
func spread(n, grain int, parallel bool, start func() (chunk func(lo, hi int), done func())) {
	chunks := ceilDiv(n, grain)
	workers := 1
	if parallel {
		workers = min(par.Threads(), chunks)
	}
	if workers <= 1 {
		chunk, done := start()
		chunk(0, n)
		done()
		return
	}
	var next atomic.Int64
	par.For(workers, 1, func(lo, hi int) {
		for range hi - lo { // one worker per item
			chunk, done := start()
			for c := int(next.Add(1)) - 1; c < chunks; c = int(next.Add(1)) - 1 {
				chunk(c*grain, min(n, (c+1)*grain))
			}
			done()
		}
	})
}

// bBlock is one kc×nc block of op(B) (see bMode).
type bBlock struct {
	jc, nc, pc, kc, nr int
	mode               bMode
	fullPanels         int       // panels that are nr columns wide
	packed             []float32 // bPacked: all panels; bDirect: the ragged last one
}

// packPanel packs panel jp of the block into dst.
func (d *blocked) packPanel(g *call, bl *bBlock, dst []float32, jp int) {
	j0 := bl.jc + jp*d.nr
	packB(dst, g.b, g.ldb, g.transB, bl.pc, bl.kc, j0, min(d.nr, bl.jc+bl.nc-j0), d.nr, d.asmPack)
}

// columnGroups splits the panels of B into groups so that a short C (few
// row tiles) still gives every worker a fair share. The split only changes
// who computes a tile, never how.
func (d *blocked) columnGroups(tiles, panels int, parallel bool) int {
	t := par.Threads()
	if !parallel || t <= 1 || tiles >= 8*t || tiles%t == 0 && tiles >= 2*t {
		return 1
	}
	return max(1, min(panels, ceilDiv(8*t, tiles)))
}

// worker is the per-goroutine state of one block: packed row tiles of A
// (the last slots used, or all of them for bDirect/bLazy) and a lazily
// packed B panel.
type worker struct {
	d      *blocked
	g      *call
	bl     *bBlock
	beta   float32
	ap     []float32 // slots of mr·kc floats, one per cached A tile
	tileOf []int     // row tile held by each slot (-1: none)
	bp     []float32 // bLazy: the current panel
}

func newWorker(d *blocked, g *call, bl *bBlock, beta float32, slots int) *worker {
	w := &worker{d: d, g: g, bl: bl, beta: beta,
		ap: getBuf(slots*d.mr*bl.kc + 8), tileOf: make([]int, slots)}
	for i := range w.tileOf {
		w.tileOf[i] = -1
	}
	if bl.mode == bLazy {
		w.bp = getBuf(bl.kc * d.nr)
	}
	return w
}

func (w *worker) release() {
	putBuf(w.ap)
	if w.bp != nil {
		putBuf(w.bp)
	}
}

// panel returns panel jp of the block and its row stride, packing it first
// in bLazy mode.
func (w *worker) panel(jp int) ([]float32, int) {
	bl, nr := w.bl, w.d.nr
	switch {
	case bl.mode == bPacked:
		return bl.packed[jp*bl.kc*nr : (jp+1)*bl.kc*nr], nr
	case bl.mode == bLazy:
		w.d.packPanel(w.g, bl, w.bp, jp)
		return w.bp, nr
	case jp < bl.fullPanels:
		return w.g.b[bl.pc*w.g.ldb+bl.jc+jp*nr:], w.g.ldb
	}
	return bl.packed, nr
}

// packedA returns row tile t of A packed, packing it into its slot (t
// modulo the slot count) unless it is already there.
func (w *worker) packedA(t int) []float32 {
	d, bl := w.d, w.bl
	slot := t % len(w.tileOf)
	ap := w.ap[slot*d.mr*bl.kc : (slot+1)*d.mr*bl.kc]
	if w.tileOf[slot] != t {
		i0 := t * d.mr
		packA(ap, w.g.a, w.g.lda, w.g.transA, i0, min(d.mr, w.g.m-i0), bl.pc, bl.kc, d.mr, d.asmPack)
		w.tileOf[slot] = t
	}
	return ap
}

// run computes the C tile of row tile t and panel jp.
func (w *worker) run(t, jp int, b []float32, ldb int) {
	d, g, bl := w.d, w.g, w.bl
	ap := w.packedA(t)
	i0, j0 := t*d.mr, bl.jc+jp*d.nr
	rows, cols := min(d.mr, g.m-i0), min(d.nr, bl.jc+bl.nc-j0)
	d.micro(bl.kc, rows, cols, ap, b, ldb, g.c[i0*g.ldc+j0:], g.ldc, g.alpha, w.beta)
}

// mergeTile writes C = T + beta·C for the rows×cols corner of a scratch
// tile T that already holds alpha·A·B (for kernels that compute only whole
// tiles).
func mergeTile(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for i := range rows {
		dst := c[i*ldc : i*ldc+cols]
		src := t[i*ldt : i*ldt+cols]
		if beta == 0 {
			copy(dst, src)
			continue
		}
		for j, v := range src {
			dst[j] = v + beta*dst[j]
		}
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// bufPools recycle packing buffers so steady-state GEMM calls do not
// allocate. Pool i holds buffers of exactly 1<<i floats: one pool for all
// sizes would hand a small buffer to a large request and force a fresh
// (page-faulting) allocation every call.
var bufPools [48]sync.Pool

// getBuf returns a buffer of n floats with undefined contents, starting on a
// 64-byte boundary so that vector loads never split a cache line.
func getBuf(n int) []float32 {
	class := bits.Len(uint(max(n, 1024) - 1))
	if p, ok := bufPools[class].Get().(*[]float32); ok {
		return (*p)[:n]
	}
	return alignedFloats(1 << class)[:n]
}

func putBuf(b []float32) {
	b = b[:cap(b)]
	if class := bits.Len(uint(len(b) - 1)); 1<<class == len(b) {
		bufPools[class].Put(&b)
	}
}
