package gemm

import (
	"sync"

	"github.com/gorlhf/gorlhf/internal/par"
)

// microFunc computes one register tile: C = alpha·Ap·B + beta·C, where Ap
// holds kc steps of mr values (packed, k-major), B holds kc rows of nr
// values ldb floats apart (a packed panel has ldb == nr), and C is the mr×nr
// tile at c[0] with row stride ldc. beta == 0 must not read C.
type microFunc func(kc int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32)

// blocked is a cache-blocked GEMM in the BLIS style, mirrored for row-major
// C: B is packed in kc×nc blocks that stay in L2 and are shared by all
// workers; each worker packs one mr×kc slice of A (it stays in L1) and runs
// the micro-kernel across the block's nr-wide panels of B.
//
// The tiling depends only on the shape, never on the thread count, and each
// C element is summed over k in blocks of kc in increasing order, so results
// are bit-identical for any number of threads.
type blocked struct {
	name    string
	mr, nr  int // register tile
	kc, nc  int // cache blocks of k and n
	micro   microFunc
	asmPack bool // pack with the AVX 8×8 transpose (see pack.go)
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

// parallelMin is the work (m·n·k of one block) below which a block runs on
// the calling goroutine: smaller blocks finish faster than goroutines start.
const parallelMin = 1 << 17

func (d *blocked) run(g *call, parallel bool) {
	if g.m == 0 || g.n == 0 {
		return
	}
	if g.k == 0 || g.alpha == 0 {
		scaleC(g.m, g.n, g.beta, g.c, g.ldc)
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

// directMaxTiles is the most row tiles for which an untransposed B is read
// in place instead of packed: packing costs a full pass over the block, which
// only pays off when several row tiles reuse it.
const directMaxTiles = 2

// block multiplies the k range [pc, pc+kc) into the columns [jc, jc+nc).
func (d *blocked) block(g *call, jc, nc, pc, kc int, beta float32, parallel bool) {
	panels := ceilDiv(nc, d.nr)
	tiles := ceilDiv(g.m, d.mr)
	bl := &bBlock{jc: jc, nc: nc, pc: pc, kc: kc, nr: d.nr}
	if !g.transB && tiles <= directMaxTiles {
		// Read B in place; only a ragged last panel is packed (zero-padded).
		bl.direct, bl.b, bl.ldb = true, g.b, g.ldb
		bl.fullPanels = nc / d.nr
		if bl.fullPanels < panels {
			bl.packed = getBuf(kc * d.nr)
			d.packPanel(g, bl, bl.packed, bl.fullPanels)
		}
	} else {
		bl.packed = getBuf(panels * kc * d.nr)
	}
	defer func() {
		if bl.packed != nil {
			putBuf(bl.packed)
		}
	}()
	packPanels := func(lo, hi int) {
		for jp := lo; jp < hi; jp++ {
			d.packPanel(g, bl, bl.packed[jp*kc*d.nr:(jp+1)*kc*d.nr], jp)
		}
	}
	groups := d.columnGroups(tiles, panels, parallel)
	work := func(lo, hi int) {
		w := newWorker(d, g, bl, beta)
		defer w.release()
		for it := lo; it < hi; it++ {
			tile, grp := it/groups, it%groups
			w.tile(tile, grp*panels/groups, (grp+1)*panels/groups)
		}
	}
	switch {
	case bl.direct && !parallel:
		work(0, tiles*groups)
	case bl.direct:
		par.For(tiles*groups, 1, work)
	case !parallel:
		packPanels(0, panels)
		work(0, tiles*groups)
	default:
		par.For(panels, 4, packPanels)
		par.For(tiles*groups, 1, work)
	}
}

// bBlock is one kc×nc block of op(B), either packed into nr-wide panels or
// (untransposed B, few row tiles) read in place.
type bBlock struct {
	jc, nc, pc, kc, nr int
	direct             bool
	b                  []float32 // in-place B (direct)
	ldb                int
	fullPanels         int       // direct: panels read in place
	packed             []float32 // packed panels (direct: only the ragged last one)
}

// panel returns panel jp of the block and its row stride.
func (bl *bBlock) panel(jp int) ([]float32, int) {
	if bl.direct {
		if jp < bl.fullPanels {
			return bl.b[(bl.pc)*bl.ldb+bl.jc+jp*bl.nr:], bl.ldb
		}
		return bl.packed, bl.nr
	}
	return bl.packed[jp*bl.kc*bl.nr : (jp+1)*bl.kc*bl.nr], bl.nr
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

// worker is the per-goroutine state of one block: a packed slice of A and a
// scratch tile for the ragged right and bottom edges of C.
type worker struct {
	d                *blocked
	g                *call
	bl               *bBlock
	beta             float32
	ap, scratch      []float32
	packedTile, rows int
}

func newWorker(d *blocked, g *call, bl *bBlock, beta float32) *worker {
	return &worker{d: d, g: g, bl: bl, beta: beta,
		ap: getBuf(d.mr*bl.kc + 8), scratch: getBuf(d.mr * d.nr), packedTile: -1}
}

func (w *worker) release() {
	putBuf(w.ap)
	putBuf(w.scratch)
}

// tile computes row tile t of C against panels [p0, p1) of the block.
func (w *worker) tile(t, p0, p1 int) {
	d, g, bl := w.d, w.g, w.bl
	i0 := t * d.mr
	if w.packedTile != t {
		w.rows = min(d.mr, g.m-i0)
		packA(w.ap, g.a, g.lda, g.transA, i0, w.rows, bl.pc, bl.kc, d.mr, d.asmPack)
		w.packedTile = t
	}
	for jp := p0; jp < p1; jp++ {
		j0 := bl.jc + jp*d.nr
		cols := min(d.nr, bl.jc+bl.nc-j0)
		b, ldb := bl.panel(jp)
		off := i0*g.ldc + j0
		if w.rows == d.mr && cols == d.nr {
			d.micro(bl.kc, w.ap, b, ldb, g.c[off:], g.ldc, g.alpha, w.beta)
			continue
		}
		d.micro(bl.kc, w.ap, b, ldb, w.scratch, d.nr, g.alpha, 0)
		mergeTile(g.c[off:], g.ldc, w.scratch, d.nr, w.rows, cols, w.beta)
	}
}

// mergeTile writes C = T + beta·C for the rows×cols corner of a scratch
// tile T that already holds alpha·A·B.
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

// bufPool recycles packing buffers so steady-state GEMM calls do not
// allocate.
var bufPool sync.Pool

// getBuf returns a buffer of n floats with undefined contents. Packed
// buffers start 64-byte aligned so that vector loads never split a line.
func getBuf(n int) []float32 {
	if p, ok := bufPool.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return alignedFloats(max(n, 4096))[:n]
}

func putBuf(b []float32) {
	b = b[:cap(b)]
	bufPool.Put(&b)
}
