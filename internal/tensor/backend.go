package tensor

import (
	"sync/atomic"

	"github.com/gorlhf/gorlhf/internal/gemm"
)

// Backend runs the heavy kernels behind the ops: GEMM and the fused kernels
// whose cost grows with model size. Ops do their shape checks and tape
// bookkeeping, then call the active backend, so a new backend (a GPU one,
// say) is added here without touching models or trainers.
//
// Slices are row-major f32 in host memory; a device backend keeps its own
// mirrors and is responsible for coherence. Implementations must be
// deterministic for a fixed thread count.
type Backend interface {
	Name() string
	// Gemm computes C = alpha·op(A)·op(B) + beta·C (see gemm.Kernel), using all threads.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// GemmSerial is Gemm on the calling goroutine, for loops already split across threads.
	GemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// Attention computes causal (optionally block-diagonal) multi-head attention; see AttentionArgs.
	AttentionForward(a *AttentionArgs)
	AttentionBackward(a *AttentionArgs)
	// RMSNormForward writes y and rstd [rows]; RMSNormBackward accumulates dx and dw.
	RMSNormForward(x, w, y, rstd []float32, rows, cols int, eps float32)
	RMSNormBackward(x, w, rstd, dy, dx, dw []float32, rows, cols int)
	// LayerNormForward writes y, mean and rstd [rows]; LayerNormBackward accumulates dx, dw, db.
	LayerNormForward(x, w, b, y, mean, rstd []float32, rows, cols int, eps float32)
	LayerNormBackward(x, w, mean, rstd, dy, dx, dw, db []float32, rows, cols int)
	// TokenLogProbsForward writes out[n] = log softmax(logits[n])[targets[n]]
	// and lse[n]; rows with target < 0 get 0. The backward accumulates
	// dlogits[n] += dout[n]·(onehot(target) − softmax(logits[n])).
	TokenLogProbsForward(logits []float32, targets []int32, out, lse []float32, rows, vocab int)
	TokenLogProbsBackward(logits []float32, targets []int32, lse, dout, dlogits []float32, rows, vocab int)
}

var active atomic.Pointer[backendBox]

type backendBox struct{ b Backend }

// Active returns the backend ops use (CPU with the default GEMM kernel unless set).
func Active() Backend {
	if bx := active.Load(); bx != nil {
		return bx.b
	}
	return CPU{Kernel: gemm.Default()}
}

// SetBackend makes b the backend for all later ops. Call it at start-up,
// not while ops run.
func SetBackend(b Backend) { active.Store(&backendBox{b}) }

// CPU is the host backend: GEMM from package gemm, the rest in pure Go
// split across par.Threads() workers.
type CPU struct {
	Kernel gemm.Kernel
}

func (c CPU) Name() string { return "cpu/" + c.Kernel.Name() }

func (c CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	c.Kernel.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

func (c CPU) GemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	c.Kernel.SgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

func (c CPU) AttentionForward(a *AttentionArgs)  { attentionForward(c, a) }
func (c CPU) AttentionBackward(a *AttentionArgs) { attentionBackward(c, a) }
func (CPU) RMSNormForward(x, w, y, rstd []float32, rows, cols int, eps float32) {
	rmsNormForward(x, w, y, rstd, rows, cols, eps)
}
func (CPU) RMSNormBackward(x, w, rstd, dy, dx, dw []float32, rows, cols int) {
	rmsNormBackward(x, w, rstd, dy, dx, dw, rows, cols)
}
func (CPU) LayerNormForward(x, w, b, y, mean, rstd []float32, rows, cols int, eps float32) {
	layerNormForward(x, w, b, y, mean, rstd, rows, cols, eps)
}
func (CPU) LayerNormBackward(x, w, mean, rstd, dy, dx, dw, db []float32, rows, cols int) {
	layerNormBackward(x, w, mean, rstd, dy, dx, dw, db, rows, cols)
}
func (CPU) TokenLogProbsForward(logits []float32, targets []int32, out, lse []float32, rows, vocab int) {
	tokenLogProbsForward(logits, targets, out, lse, rows, vocab)
}
func (CPU) TokenLogProbsBackward(logits []float32, targets []int32, lse, dout, dlogits []float32, rows, vocab int) {
	tokenLogProbsBackward(logits, targets, lse, dout, dlogits, rows, vocab)
}
