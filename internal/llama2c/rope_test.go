package llama2c

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// ropeInterleaved is llama2.c's RoPE on one head: pairs (x[2j], x[2j+1]).
func ropeInterleaved(x []float32, pos int) {
	d := len(x)
	for j := 0; j < d/2; j++ {
		c, s := angle(pos, j, d)
		a, b := x[2*j], x[2*j+1]
		x[2*j], x[2*j+1] = a*c-b*s, a*s+b*c
	}
}

// ropeHalf is HF Llama's rotate-half RoPE on one head: pairs (x[j], x[j+d/2]).
func ropeHalf(x []float32, pos int) {
	d := len(x)
	for j := 0; j < d/2; j++ {
		c, s := angle(pos, j, d)
		a, b := x[j], x[j+d/2]
		x[j], x[j+d/2] = a*c-b*s, a*s+b*c
	}
}

// angle returns cos and sin of pos·θ^(-2j/d), computed as llama2.c does.
func angle(pos, j, d int) (float32, float32) {
	freq := 1 / math.Pow(RopeTheta, float64(2*j)/float64(d))
	v := float64(pos) * float64(float32(freq))
	return float32(math.Cos(v)), float32(math.Sin(v))
}

// matVec computes w·x for w of shape [len(w)/len(x), len(x)].
func matVec(w, x []float32) []float32 {
	out := make([]float32, len(w)/len(x))
	for i := range out {
		var s float32
		for j, xv := range x {
			s += w[i*len(x)+j] * xv
		}
		out[i] = s
	}
	return out
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestPermuteRotary_RoPEEquivalence(t *testing.T) {
	const heads, headDim, cols = 3, 8, 5
	r := rand.New(rand.NewPCG(1, 2))
	wq, wk := randVec(r, heads*headDim*cols), randVec(r, heads*headDim*cols)
	pq, pk := PermuteRotary(wq, heads, headDim, cols), PermuteRotary(wk, heads, headDim, cols)
	for trial := range 20 {
		x, y := randVec(r, cols), randVec(r, cols)
		posQ, posK := trial*7, trial*3
		q, k := matVec(wq, x), matVec(wk, y)   // llama2.c weights
		hq, hk := matVec(pq, x), matVec(pk, y) // permuted weights
		for h := range heads {
			span := func(v []float32) []float32 { return v[h*headDim : (h+1)*headDim] }
			ropeInterleaved(span(q), posQ)
			ropeInterleaved(span(k), posK)
			ropeHalf(span(hq), posQ)
			ropeHalf(span(hk), posK)
			// HF RoPE on permuted weights = permuted llama2.c RoPE output.
			for j := range headDim / 2 {
				for _, c := range [][2]float32{
					{span(hq)[j], span(q)[2*j]}, {span(hq)[headDim/2+j], span(q)[2*j+1]},
					{span(hk)[j], span(k)[2*j]}, {span(hk)[headDim/2+j], span(k)[2*j+1]},
				} {
					if math.Abs(float64(c[0]-c[1])) > 1e-5 {
						t.Fatalf("trial %d head %d pair %d: %v != %v", trial, h, j, c[0], c[1])
					}
				}
			}
			// Hence attention scores agree.
			if d := math.Abs(float64(dot(span(q), span(k)) - dot(span(hq), span(hk)))); d > 1e-4 {
				t.Fatalf("trial %d head %d: scores differ by %g", trial, h, d)
			}
		}
	}
	// Without the permutation, HF RoPE gives different scores: the test can fail.
	x, y := randVec(r, cols), randVec(r, cols)
	q, k, hq, hk := matVec(wq, x), matVec(wk, y), matVec(wq, x), matVec(wk, y)
	ropeInterleaved(q[:headDim], 5)
	ropeInterleaved(k[:headDim], 1)
	ropeHalf(hq[:headDim], 5)
	ropeHalf(hk[:headDim], 1)
	if math.Abs(float64(dot(q[:headDim], k[:headDim])-dot(hq[:headDim], hk[:headDim]))) < 1e-3 {
		t.Error("unpermuted weights agree too: the check is vacuous")
	}
}

func TestPermuteRotary_Rows(t *testing.T) {
	// 1 head of size 4, 1 column: rows 0,1,2,3 -> 0,2,1,3.
	if got := PermuteRotary([]float32{0, 1, 2, 3}, 1, 4, 1); !slices.Equal(got, []float32{0, 2, 1, 3}) {
		t.Errorf("PermuteRotary = %v, want [0 2 1 3]", got)
	}
	// 2 heads of size 4, 2 columns: permutation is per head and moves whole rows.
	w := []float32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}
	want := []float32{0, 0, 2, 2, 1, 1, 3, 3, 4, 4, 6, 6, 5, 5, 7, 7}
	if got := PermuteRotary(w, 2, 4, 2); !slices.Equal(got, want) {
		t.Errorf("PermuteRotary = %v, want %v", got, want)
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestParse_GreedyMatchesReference runs a tiny float32 Llama forward pass
// written here (llama2.c run.c semantics) on the parsed weights and checks
// the greedy tokens and position-0 logits against reference_greedy.json,
// once with permuted weights and HF rotate-half RoPE and once with the
// original weights and interleaved RoPE.
func TestParse_GreedyMatchesReference(t *testing.T) {
	raw, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		GreedyIDs  []int     `json:"greedy_ids"`
		Pos0Logits []float32 `json:"pos0_logits"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	steps := 200
	if testing.Short() {
		steps = 40
	}
	variants := []struct {
		name string
		opt  Options
		rope func([]float32, int)
	}{
		{"permuted+rotate-half", Options{}, ropeHalf},
		{"interleaved", Options{Interleaved: true}, ropeInterleaved},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ck, err := Parse(readModel(t), v.opt)
			if err != nil {
				t.Fatal(err)
			}
			m := newMiniModel(ck, v.rope)
			tok := BOS
			for pos := range steps {
				logits := m.forward(tok, pos)
				if pos == 0 {
					for i, want := range ref.Pos0Logits {
						if math.Abs(float64(logits[i]-want)) > 1e-4 {
							t.Fatalf("pos0 logit %d = %v, want %v", i, logits[i], want)
						}
					}
				}
				tok = argmax(logits)
				if tok != ref.GreedyIDs[pos] {
					t.Fatalf("position %d: greedy token %d, want %d", pos, tok, ref.GreedyIDs[pos])
				}
			}
		})
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
