//go:build ignore

// gen_asm writes the SIMD micro-kernels (kern_*_amd64.s) and their Go
// declarations (kern_*_amd64.go). Each kernel is a fully unrolled register
// tile, and every tile height from 1 row to the full tile gets its own
// kernel so ragged bottom edges (and small m, as in decoding) waste no
// FMAs. Writing that by hand would be thousands of near-identical lines;
// generating it keeps the register plan in one place.
//
// Run with: go generate ./internal/gemm
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"strings"
)

// isa describes one instruction set the kernels are generated for.
type isa struct {
	name   string // "avx512" or "avx2"
	prefix string // Go function name prefix
	lanes  int    // floats per vector
	nregs  int    // vector registers
	mr, nv int    // full tile: mr rows × nv vectors
	// bcst: AVX-512 broadcasts each A value inside the FMA (embedded
	// broadcast), which frees the broadcast registers. masked: C columns
	// beyond the cols argument are neither read nor written.
	bcst, masked bool
}

var (
	// AVX-512: 14 rows × 2 zmm with embedded broadcast; measured as fast as
	// the best of 6×64, 8×48, 12×32 and 14×32 with broadcast registers on
	// a Sapphire Rapids core (~137 GFLOP/s of a ~140 peak).
	avx512 = isa{name: "avx512", prefix: "kernAVX512", lanes: 16, nregs: 32, mr: 14, nv: 2, bcst: true, masked: true}
	// AVX2 has no embedded broadcast: the classic 6×16 tile uses 12 of 16
	// ymm registers for accumulators, 2 for B and 2 for broadcasts.
	avx2 = isa{name: "avx2", prefix: "kernAVX2", lanes: 8, nregs: 16, mr: 6, nv: 2}
)

// spec is one kernel: rows of C (1..mr) from A packed with stride mr.
type spec struct {
	isa
	rows int
}

func (s spec) fn() string { return fmt.Sprintf("%sR%d", s.prefix, s.rows) }
func (s spec) reg(i int) string {
	if s.name == "avx512" {
		return fmt.Sprintf("Z%d", i)
	}
	return fmt.Sprintf("Y%d", i)
}

// split is how many accumulator sets the unrolled k steps rotate through.
// A short tile (few rows) has too few independent FMA chains to hide the
// FMA latency (8 chains keep 2 ports busy at 4 cycles), so k steps u, u+1,
// ... go to different sets that are added up at the end.
func (s spec) split() int {
	if s.rows*s.nv >= 8 {
		return 1
	}
	for _, n := range []int{4, 2} {
		if s.regsFor(n) <= s.nregs {
			return n
		}
	}
	return 1
}

// regsFor is the vector registers needed with n accumulator sets.
func (s spec) regsFor(n int) int {
	if s.bcst {
		return n*s.rows*s.nv + s.nv + 1 // + a beta register in the epilogue
	}
	return n*s.rows*s.nv + s.nv + 2
}

func (s spec) accIn(set, r, v int) string { return s.reg(set*s.rows*s.nv + r*s.nv + v) }
func (s spec) acc(r, v int) string        { return s.accIn(0, r, v) }
func (s spec) breg(v int) string          { return s.reg(s.split()*s.rows*s.nv + v) }
func (s spec) areg(r int) string          { return s.reg(s.split()*s.rows*s.nv + s.nv + r%2) }

type writer struct{ bytes.Buffer }

func (w *writer) op(format string, args ...any) { fmt.Fprintf(w, "\t"+format+"\n", args...) }
func (w *writer) label(l string)                { fmt.Fprintf(w, "%s:\n", l) }

func (s spec) check() {
	if need := s.regsFor(s.split()); need > s.nregs {
		log.Fatalf("%s: needs %d vector registers, %s has %d", s.fn(), s.regsFor(s.split()), s.name, s.nregs)
	}
}

// step emits one k step u (0..3) of the unrolled loop into accumulator
// set u % split.
func (s spec) step(w *writer, u int) {
	set := u % s.split()
	// B rows are ldb floats apart: R10 = 1 row, R11 = 3 rows (in bytes).
	base := [4]string{"(DI)", "(DI)(R10*1)", "(DI)(R10*2)", "(DI)(R11*1)"}[u]
	for v := range s.nv {
		w.op("VMOVUPS %d%s, %s", v*s.lanes*4, base, s.breg(v))
	}
	for r := range s.rows {
		aoff := (u*s.mr + r) * 4
		if s.bcst {
			for v := range s.nv {
				w.op("VFMADD231PS.BCST %d(SI), %s, %s", aoff, s.breg(v), s.accIn(set, r, v))
			}
			continue
		}
		w.op("VBROADCASTSS %d(SI), %s", aoff, s.areg(r))
		for v := range s.nv {
			w.op("VFMADD231PS %s, %s, %s", s.breg(v), s.areg(r), s.accIn(set, r, v))
		}
	}
}

func (s spec) signature() string {
	if s.masked {
		return "kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32, cols int"
	}
	return "kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32"
}

func (s spec) emit(w *writer) {
	s.check()
	nr := s.nv * s.lanes
	vb := s.lanes * 4
	frame := 56
	if s.masked {
		frame = 64
	}
	fmt.Fprintf(w, "\n// func %s(%s)\n", s.fn(), s.signature())
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", s.fn(), frame)
	w.op("MOVQ kc+0(FP), CX")
	w.op("MOVQ a+8(FP), SI")
	w.op("MOVQ b+16(FP), DI")
	w.op("MOVQ c+24(FP), DX")
	w.op("MOVQ ldb+32(FP), R10")
	w.op("SHLQ $2, R10")
	w.op("LEAQ (R10)(R10*2), R11")
	w.op("MOVQ R10, R12")
	w.op("SHLQ $2, R12")
	w.op("MOVQ ldc+40(FP), R8")
	w.op("SHLQ $2, R8")
	// Warm the C tile while the k loop runs.
	w.op("MOVQ DX, R9")
	for range s.rows {
		for off := 0; off < nr*4; off += 64 {
			w.op("PREFETCHT0 %d(R9)", off)
		}
		w.op("ADDQ R8, R9")
	}
	for set := range s.split() {
		for r := range s.rows {
			for v := range s.nv {
				if s.name == "avx512" {
					w.op("VPXORD %[1]s, %[1]s, %[1]s", s.accIn(set, r, v))
				} else {
					w.op("VXORPS %[1]s, %[1]s, %[1]s", s.accIn(set, r, v))
				}
			}
		}
	}
	p := s.fn() + "_"
	w.op("MOVQ CX, BX")
	w.op("SHRQ $2, BX")
	w.op("JZ %stail", p)
	w.label(p + "loop")
	for u := range 4 {
		s.step(w, u)
	}
	w.op("ADDQ $%d, SI", 4*s.mr*4)
	w.op("ADDQ R12, DI")
	w.op("DECQ BX")
	w.op("JNZ %sloop", p)
	w.label(p + "tail")
	w.op("ANDQ $3, CX")
	w.op("JZ %sstore", p)
	w.label(p + "loop1")
	s.step(w, 0)
	w.op("ADDQ $%d, SI", s.mr*4)
	w.op("ADDQ R10, DI")
	w.op("DECQ CX")
	w.op("JNZ %sloop1", p)
	w.label(p + "store")
	// Add the accumulator sets pairwise: (0+1)+(2+3).
	for step := 1; step < s.split(); step *= 2 {
		for set := 0; set+step < s.split(); set += 2 * step {
			for r := range s.rows {
				for v := range s.nv {
					w.op("VADDPS %s, %s, %s", s.accIn(set+step, r, v), s.accIn(set, r, v), s.accIn(set, r, v))
				}
			}
		}
	}
	alpha, beta := s.breg(0), s.reg(s.nregs-1)
	if !s.bcst {
		alpha, beta = s.areg(0), s.areg(1)
	}
	mask := func(v int) string { return "" }
	if s.masked {
		// K1..Knv = the low cols bits of (1<<cols)-1, 16 per vector.
		w.op("MOVQ cols+56(FP), CX")
		w.op("MOVQ $1, BX")
		w.op("SHLQ CX, BX")
		w.op("DECQ BX")
		for v := range s.nv {
			if v > 0 {
				w.op("SHRQ $%d, BX", s.lanes)
			}
			w.op("KMOVW BX, K%d", v+1)
		}
		mask = func(v int) string { return fmt.Sprintf("K%d, ", v+1) }
	}
	w.op("VBROADCASTSS alpha+48(FP), %s", alpha)
	w.op("MOVL beta+52(FP), AX")
	w.op("ANDL $0x7fffffff, AX")
	w.op("JZ %snobeta", p)
	w.op("VBROADCASTSS beta+52(FP), %s", beta)
	for r := range s.rows {
		for v := range s.nv {
			w.op("VMULPS %s, %s, %s", alpha, s.acc(r, v), s.acc(r, v))
			w.op("VFMADD231PS %d(DX), %s, %s%s", v*vb, beta, mask(v), s.acc(r, v))
			w.op("VMOVUPS %s, %s%d(DX)", s.acc(r, v), mask(v), v*vb)
		}
		w.op("ADDQ R8, DX")
	}
	w.op("VZEROUPPER")
	w.op("RET")
	w.label(p + "nobeta")
	for r := range s.rows {
		for v := range s.nv {
			w.op("VMULPS %s, %s, %s", alpha, s.acc(r, v), s.acc(r, v))
			w.op("VMOVUPS %s, %s%d(DX)", s.acc(r, v), mask(v), v*vb)
		}
		w.op("ADDQ R8, DX")
	}
	w.op("VZEROUPPER")
	w.op("RET")
}

const header = "// Code generated by gen_asm.go; DO NOT EDIT.\n\n"

// write emits the assembly and the Go declarations for every tile height
// of one instruction set, plus a table indexed by rows.
func write(x isa) {
	var s, g writer
	s.WriteString(header + "#include \"textflag.h\"\n")
	fmt.Fprintf(&g, "%spackage gemm\n\n", header)
	fmt.Fprintf(&g, "// %s register tiles: C = alpha·Ap·B + beta·C for the top rows of a\n", x.name)
	fmt.Fprintf(&g, "// %d×%d tile (beta == 0: C is not read). Ap is packed, %d floats per k step;\n", x.mr, x.nv*x.lanes, x.mr)
	fmt.Fprintf(&g, "// B has kc rows ldb floats apart.")
	if x.masked {
		fmt.Fprintf(&g, " Only the first cols columns of C are touched.")
	}
	fmt.Fprintf(&g, "\n\n")
	var names []string
	for rows := 1; rows <= x.mr; rows++ {
		sp := spec{x, rows}
		sp.emit(&s)
		fmt.Fprintf(&g, "//go:noescape\nfunc %s(%s)\n\n", sp.fn(), sp.signature())
		names = append(names, sp.fn())
	}
	fmt.Fprintf(&g, "// %sRows[r] computes the top r rows.\n", x.prefix)
	fmt.Fprintf(&g, "var %sRows = [...]func(%s){nil, %s}\n", x.prefix, spec{x, 1}.signature(), strings.Join(names, ", "))
	for path, w := range map[string]*writer{"kern_" + x.name + "_amd64.s": &s, "kern_" + x.name + "_amd64.go": &g} {
		if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", path, strings.Count(w.String(), "\n"), "lines")
	}
}

func main() {
	write(avx512)
	write(avx2)
	writeDot()
	writeDotAVX2()
}

// dot kernels (AVX-512): C[r][c] = alpha·dot(A row r, W row c) + beta·C[r][c]
// for up to 4 rows of A and 4 rows of W, all contiguous along k. They serve
// x·Wᵀ with a small batch (decoding), where packing W would cost more than
// the product. Each of the 16 (row, W row) pairs accumulates 16 lanes; a
// shuffle tree then reduces them to one vector whose lane 4r+c is C[r][c].

func dotFn(rows int) string { return fmt.Sprintf("dotAVX512M%d", rows) }

const dotSig = "k int, a *float32, lda int, w0, w1, w2, w3 *float32, c *float32, ldc int, alpha, beta float32, cols int"

func emitDot(w *writer, rows int) {
	acc := func(r, c int) string { return fmt.Sprintf("Z%d", 4*r+c) }
	wreg := func(c int) string { return fmt.Sprintf("Z%d", 16+c) }
	const x = "Z20"
	aRow := [4]string{"(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R9*1)"}
	wPtr := [4]string{"DI", "R10", "R11", "R12"}
	p := dotFn(rows) + "_"
	fmt.Fprintf(w, "\n// func %s(%s)\n", dotFn(rows), dotSig)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-88\n", dotFn(rows))
	w.op("MOVQ k+0(FP), CX")
	w.op("MOVQ a+8(FP), SI")
	w.op("MOVQ lda+16(FP), R8")
	w.op("SHLQ $2, R8")
	w.op("LEAQ (R8)(R8*2), R9")
	w.op("MOVQ w0+24(FP), DI")
	w.op("MOVQ w1+32(FP), R10")
	w.op("MOVQ w2+40(FP), R11")
	w.op("MOVQ w3+48(FP), R12")
	for i := 0; i < 21; i++ {
		w.op("VPXORD Z%[1]d, Z%[1]d, Z%[1]d", i)
	}
	// K7 masks the last k%16 floats.
	w.op("MOVQ CX, R13")
	w.op("ANDQ $15, CX")
	w.op("MOVQ CX, BX")
	w.op("MOVQ $1, AX")
	w.op("SHLQ CX, AX")
	w.op("DECQ AX")
	w.op("KMOVW AX, K7")
	w.op("MOVQ R13, CX")
	w.op("SHRQ $4, CX")
	w.op("JZ %stail", p)
	body := func(load func(addr, dst string)) {
		for c := range 4 {
			load("("+wPtr[c]+")", wreg(c))
		}
		for r := range rows {
			load(aRow[r], x)
			for c := range 4 {
				w.op("VFMADD231PS %s, %s, %s", wreg(c), x, acc(r, c))
			}
		}
	}
	w.label(p + "loop")
	body(func(addr, dst string) { w.op("VMOVUPS %s, %s", addr, dst) })
	w.op("ADDQ $64, SI")
	for _, r := range wPtr {
		w.op("ADDQ $64, %s", r)
	}
	w.op("DECQ CX")
	w.op("JNZ %sloop", p)
	w.label(p + "tail")
	w.op("TESTQ BX, BX")
	w.op("JZ %sreduce", p)
	body(func(addr, dst string) { w.op("VMOVUPS.Z %s, K7, %s", addr, dst) })
	w.label(p + "reduce")
	// Level 1: pairs of accumulators -> 8 vectors (Z21..Z28).
	for i := range 8 {
		a, b := fmt.Sprintf("Z%d", 2*i), fmt.Sprintf("Z%d", 2*i+1)
		w.op("VUNPCKLPS %s, %s, Z29", b, a)
		w.op("VUNPCKHPS %s, %s, Z30", b, a)
		w.op("VADDPS Z30, Z29, Z%d", 21+i)
	}
	// Level 2: pairs of those -> 4 vectors (Z0..Z3): block lanes = 4 outputs.
	for i := range 4 {
		a, b := fmt.Sprintf("Z%d", 21+2*i), fmt.Sprintf("Z%d", 22+2*i)
		w.op("VUNPCKLPD %s, %s, Z29", b, a)
		w.op("VUNPCKHPD %s, %s, Z30", b, a)
		w.op("VADDPS Z30, Z29, Z%d", i)
	}
	// Level 3: add the four 128-bit blocks across vectors.
	w.op("VSHUFF32X4 $0x44, Z1, Z0, Z29")
	w.op("VSHUFF32X4 $0xEE, Z1, Z0, Z30")
	w.op("VADDPS Z30, Z29, Z4")
	w.op("VSHUFF32X4 $0x44, Z3, Z2, Z29")
	w.op("VSHUFF32X4 $0xEE, Z3, Z2, Z30")
	w.op("VADDPS Z30, Z29, Z5")
	w.op("VSHUFF32X4 $0x88, Z5, Z4, Z29")
	w.op("VSHUFF32X4 $0xDD, Z5, Z4, Z30")
	w.op("VADDPS Z30, Z29, Z0") // lane 4r+c = dot(A row r, W row c)
	// Row r of C is written from lanes 4r..4r+cols-1 with a masked store at
	// &C[r][0] - 16r bytes, so only AVX-512F is needed.
	w.op("MOVQ c+56(FP), DX")
	w.op("MOVQ ldc+64(FP), R13")
	w.op("SHLQ $2, R13")
	w.op("MOVQ cols+80(FP), CX")
	w.op("MOVQ $1, AX")
	w.op("SHLQ CX, AX")
	w.op("DECQ AX") // low cols bits
	w.op("VBROADCASTSS alpha+72(FP), Z1")
	w.op("VMULPS Z1, Z0, Z0")
	w.op("MOVL beta+76(FP), BX")
	w.op("ANDL $0x7fffffff, BX")
	w.op("JZ %sstore", p)
	w.op("VBROADCASTSS beta+76(FP), Z2")
	w.op("VPXORD Z3, Z3, Z3")
	w.op("MOVQ DX, BX")
	w.op("MOVQ AX, R9")
	for r := range rows {
		w.op("KMOVW R9, K1")
		w.op("VMOVUPS %d(BX), K1, Z3", -16*r)
		w.op("ADDQ R13, BX")
		w.op("SHLQ $4, R9")
	}
	w.op("VFMADD231PS Z3, Z2, Z0")
	w.label(p + "store")
	for r := range rows {
		w.op("KMOVW AX, K1")
		w.op("VMOVUPS Z0, K1, %d(DX)", -16*r)
		w.op("ADDQ R13, DX")
		w.op("SHLQ $4, AX")
	}
	w.op("VZEROUPPER")
	w.op("RET")
}

func writeDot() {
	var s, g writer
	s.WriteString(header + "#include \"textflag.h\"\n")
	fmt.Fprintf(&g, "%spackage gemm\n\n", header)
	g.WriteString("// AVX-512 dot kernels: C[r][c] = alpha·dot(A row r, W row c) + beta·C[r][c]\n")
	g.WriteString("// for r < rows (the M in the name) and c < cols <= 4, over k floats. A rows\n")
	g.WriteString("// are lda floats apart; w0..w3 point at the W rows (pass a valid row for\n")
	g.WriteString("// c >= cols; it is read but not stored).\n\n")
	var names []string
	for rows := 1; rows <= 4; rows++ {
		emitDot(&s, rows)
		fmt.Fprintf(&g, "//go:noescape\nfunc %s(%s)\n\n", dotFn(rows), dotSig)
		names = append(names, dotFn(rows))
	}
	fmt.Fprintf(&g, "// dotAVX512Rows[r] handles r rows of A.\n")
	fmt.Fprintf(&g, "var dotAVX512Rows = [...]func(%s){nil, %s}\n", dotSig, strings.Join(names, ", "))
	for path, w := range map[string]*writer{"dot_avx512_amd64.s": &s, "dot_avx512_amd64.go": &g} {
		if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", path, strings.Count(w.String(), "\n"), "lines")
	}
}

// AVX2 dot kernels: the same idea with 8 lanes and 16 registers, so 2 rows
// of A × 4 rows of W (8 accumulators). AVX2 has no mask registers; the k
// tail and the C columns use VMASKMOVPS with masks cut from a table.

func dotAVX2Fn(rows int) string { return fmt.Sprintf("dotAVX2M%d", rows) }

func emitDotAVX2(w *writer, rows int) {
	acc := func(r, c int) string { return fmt.Sprintf("Y%d", 4*r+c) }
	wreg := func(c int) string { return fmt.Sprintf("Y%d", 8+c) }
	const x, kmask = "Y12", "Y13"
	aRow := [2]string{"(SI)", "(SI)(R8*1)"}
	wPtr := [4]string{"DI", "R10", "R11", "R12"}
	p := dotAVX2Fn(rows) + "_"
	fmt.Fprintf(w, "\n// func %s(%s)\n", dotAVX2Fn(rows), dotSig)
	fmt.Fprintf(w, "TEXT ·%s(SB), NOSPLIT, $0-88\n", dotAVX2Fn(rows))
	w.op("MOVQ k+0(FP), CX")
	w.op("MOVQ a+8(FP), SI")
	w.op("MOVQ lda+16(FP), R8")
	w.op("SHLQ $2, R8")
	w.op("MOVQ w0+24(FP), DI")
	w.op("MOVQ w1+32(FP), R10")
	w.op("MOVQ w2+40(FP), R11")
	w.op("MOVQ w3+48(FP), R12")
	for i := range 8 {
		w.op("VXORPS Y%[1]d, Y%[1]d, Y%[1]d", i)
	}
	// kmask = first k%8 lanes set: 8 floats from dotMaskAVX2 + 4·(8 - k%8).
	w.op("MOVQ CX, BX")
	w.op("ANDQ $7, BX")
	w.op("LEAQ dotMaskAVX2<>+32(SB), AX")
	w.op("SHLQ $2, BX")
	w.op("SUBQ BX, AX")
	w.op("VMOVUPS (AX), %s", kmask)
	w.op("SHRQ $3, CX")
	w.op("JZ %stail", p)
	body := func(load func(addr, dst string)) {
		for c := range 4 {
			load("("+wPtr[c]+")", wreg(c))
		}
		for r := range rows {
			load(aRow[r], x)
			for c := range 4 {
				w.op("VFMADD231PS %s, %s, %s", wreg(c), x, acc(r, c))
			}
		}
	}
	w.label(p + "loop")
	body(func(addr, dst string) { w.op("VMOVUPS %s, %s", addr, dst) })
	w.op("ADDQ $32, SI")
	for _, r := range wPtr {
		w.op("ADDQ $32, %s", r)
	}
	w.op("DECQ CX")
	w.op("JNZ %sloop", p)
	w.label(p + "tail")
	w.op("TESTQ BX, BX")
	w.op("JZ %sreduce", p)
	body(func(addr, dst string) { w.op("VMASKMOVPS %s, %s, %s", addr, kmask, dst) })
	w.label(p + "reduce")
	// Level 1: 8 accumulators -> 4 (Y8..Y11); level 2 -> 2 (Y0, Y1) with
	// the 4 outputs of a row in each 128-bit lane; level 3 adds the lanes.
	for i := range 4 {
		w.op("VUNPCKLPS Y%d, Y%d, Y14", 2*i+1, 2*i)
		w.op("VUNPCKHPS Y%d, Y%d, Y15", 2*i+1, 2*i)
		w.op("VADDPS Y15, Y14, Y%d", 8+i)
	}
	for i := range 2 {
		w.op("VUNPCKLPD Y%d, Y%d, Y14", 9+2*i, 8+2*i)
		w.op("VUNPCKHPD Y%d, Y%d, Y15", 9+2*i, 8+2*i)
		w.op("VADDPS Y15, Y14, Y%d", i)
	}
	w.op("VPERM2F128 $0x20, Y1, Y0, Y14")
	w.op("VPERM2F128 $0x31, Y1, Y0, Y15")
	w.op("VADDPS Y15, Y14, Y0") // lanes 4r+c
	w.op("VBROADCASTSS alpha+72(FP), Y1")
	w.op("VMULPS Y1, Y0, Y0")
	w.op("VEXTRACTF128 $1, Y0, X1") // row 1
	// X13 = first cols lanes: 4 floats from dotMaskAVX2 + 4·(8 - cols).
	w.op("MOVQ cols+80(FP), BX")
	w.op("LEAQ dotMaskAVX2<>+32(SB), AX")
	w.op("SHLQ $2, BX")
	w.op("SUBQ BX, AX")
	w.op("VMOVUPS (AX), X13")
	w.op("MOVQ c+56(FP), DX")
	w.op("MOVQ ldc+64(FP), R13")
	w.op("SHLQ $2, R13")
	w.op("MOVL beta+76(FP), BX")
	w.op("ANDL $0x7fffffff, BX")
	w.op("JZ %sstore", p)
	w.op("VBROADCASTSS beta+76(FP), X2")
	for r := range rows {
		w.op("VMASKMOVPS %s, X13, X3", [2]string{"(DX)", "(DX)(R13*1)"}[r])
		w.op("VFMADD231PS X3, X2, X%d", r)
	}
	w.label(p + "store")
	w.op("VMASKMOVPS X0, X13, (DX)")
	if rows == 2 {
		w.op("VMASKMOVPS X1, X13, (DX)(R13*1)")
	}
	w.op("VZEROUPPER")
	w.op("RET")
}

func writeDotAVX2() {
	var s, g writer
	s.WriteString(header + "#include \"textflag.h\"\n\n")
	s.WriteString("// 8 all-ones floats then 8 zeros: masks for the first n lanes start n\n")
	s.WriteString("// floats before the middle.\n")
	for i := range 16 {
		v := "0xffffffff"
		if i >= 8 {
			v = "0x00000000"
		}
		fmt.Fprintf(&s, "DATA dotMaskAVX2<>+%d(SB)/4, $%s\n", 4*i, v)
	}
	s.WriteString("GLOBL dotMaskAVX2<>(SB), RODATA|NOPTR, $64\n")
	fmt.Fprintf(&g, "%spackage gemm\n\n", header)
	g.WriteString("// AVX2 dot kernels: as dotAVX512M*, for up to 2 rows of A.\n\n")
	var names []string
	for rows := 1; rows <= 2; rows++ {
		emitDotAVX2(&s, rows)
		fmt.Fprintf(&g, "//go:noescape\nfunc %s(%s)\n\n", dotAVX2Fn(rows), dotSig)
		names = append(names, dotAVX2Fn(rows))
	}
	fmt.Fprintf(&g, "// dotAVX2Rows[r] handles r rows of A.\n")
	fmt.Fprintf(&g, "var dotAVX2Rows = [...]func(%s){nil, %s}\n", dotSig, strings.Join(names, ", "))
	for path, w := range map[string]*writer{"dot_avx2_amd64.s": &s, "dot_avx2_amd64.go": &g} {
		if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", path, strings.Count(w.String(), "\n"), "lines")
	}
}
