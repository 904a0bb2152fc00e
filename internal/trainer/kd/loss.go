package kd

import (
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LossRows returns the flat positions [B·T] whose target is trained on:
// the positions that predict a response token, where both the SFT loss
// and the distillation term are taken.
func LossRows(targets []int32) []int {
	var rows []int
	for n, t := range targets {
		if t != data.IgnoreIndex {
			rows = append(rows, n)
		}
	}
	return rows
}

// TeacherProbs returns the teacher's next-token distributions softmax(z)
// [N, V] at the given rows of its logits [B·T, V] (no gradient).
func TeacherProbs(logits *tensor.Tensor, rows []int) *tensor.Tensor {
	return tensor.Softmax(nil, tensor.GatherRows(nil, logits, rows))
}

// Distill is the token-level distillation loss (OpenRLHF's KDLoss, after
// MiniLLM's forward-KL term): the cross-entropy of the student's
// distributions under the teacher's,
//
//	L = −Σ_n Σ_v p_T(v | context_n) · log π(v | context_n) / normTokens
//
// over the rows (LossRows) of the student's logits [B·T, V]; teacher is
// TeacherProbs at the same rows [N, V]. It differs from KL(p_T ‖ π) by the
// teacher's entropy, a constant. normTokens is the step's loss-token count,
// as for the SFT loss. (OpenRLHF v0.8.11 masks this term with the unshifted
// labels, one position after the ones that predict response tokens; here
// it covers the same positions as the SFT loss.)
func Distill(tp *tensor.Tape, logits *tensor.Tensor, rows []int, teacher *tensor.Tensor, normTokens int) *tensor.Tensor {
	student := tensor.LogSoftmax(tp, tensor.GatherRows(tp, logits, rows))
	w := tensor.New(teacher.Shape...)
	scale := -1 / float32(max(normTokens, 1))
	for i, p := range teacher.Data {
		w.Data[i] = p * scale
	}
	return tensor.Sum(tp, tensor.Mul(tp, student, w))
}

// Mix is OpenRLHF's kd_coef mix: (1 − c)·SFT + c·distillation.
func Mix(tp *tensor.Tape, sftLoss, distill *tensor.Tensor, coef float64) *tensor.Tensor {
	return tensor.Add(tp, tensor.Scale(tp, sftLoss, float32(1-coef)), tensor.Scale(tp, distill, float32(coef)))
}

// Entropy returns the summed entropy −Σ_v p log p of the distributions of
// p [N, V], in nats.
func Entropy(p *tensor.Tensor) float64 {
	var h float64
	for _, x := range p.Data {
		if x > 0 {
			h -= float64(x) * float64(tensor.Logf(x))
		}
	}
	return h
}
