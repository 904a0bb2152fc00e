package llama2c

import (
	"fmt"
	"strings"
)

// PermuteRotary reorders the rows of a query or key projection w, stored
// row-major as [heads×headDim, cols], from llama2.c's interleaved RoPE
// convention to HF's rotate-half convention, and returns the new matrix.
//
// llama2.c rotates the pairs (q[2j], q[2j+1]) of each head by angle
// pos·θ^(-2j/headDim); HF rotates (q[j], q[j+headDim/2]) by the same angle.
// Moving, within each head, old row 2j to new row j and old row 2j+1 to new
// row headDim/2+j makes the HF pairs exactly the llama2.c pairs, so HF RoPE
// on the permuted weights yields the llama2.c vectors with their components
// permuted. Queries and keys are permuted alike, so every attention score
// q·k, and hence the model's output, is unchanged.
//
// It panics if len(w) != heads×headDim×cols or headDim is odd (programmer
// errors: Parse validates the sizes first).
func PermuteRotary(w []float32, heads, headDim, cols int) []float32 {
	if headDim%2 != 0 || len(w) != heads*headDim*cols {
		panic(fmt.Sprintf("llama2c: PermuteRotary of %d values as %d heads × %d × %d", len(w), heads, headDim, cols))
	}
	out := make([]float32, len(w))
	half := headDim / 2
	for h := range heads {
		base := h * headDim
		for j := range half {
			copy(out[(base+j)*cols:][:cols], w[(base+2*j)*cols:][:cols])
			copy(out[(base+half+j)*cols:][:cols], w[(base+2*j+1)*cols:][:cols])
		}
	}
	return out
}

// permuteQK applies PermuteRotary to every q_proj and k_proj weight.
func permuteQK(ck *Checkpoint) {
	c := ck.Config
	for i := range ck.Tensors {
		t := &ck.Tensors[i]
		switch {
		case strings.HasSuffix(t.Name, ".self_attn.q_proj.weight"):
			t.Data = PermuteRotary(t.Data, c.Heads, c.HeadDim(), c.Dim)
		case strings.HasSuffix(t.Name, ".self_attn.k_proj.weight"):
			t.Data = PermuteRotary(t.Data, c.KVHeads, c.HeadDim(), c.Dim)
		}
	}
}
