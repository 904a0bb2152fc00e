// Package half keeps weight matrices in 16 bits (bfloat16 or IEEE
// binary16) for decoding and multiplies f32 activations by them, widening
// each weight to f32 inside the kernel: single-stream decode reads every
// weight once per token, so halving the bytes read is most of its speed.
//
// A Matrix is [In, Out] (the weight of an nn.Linear, [Out, In], is
// transposed once when converted), stored in column panels of 128 so that
// each thread streams one contiguous stretch: y = x·W runs as broadcast
// multiply-adds over each panel's rows, the access pattern of the
// attention kernels in package generate. Products are f32 fused
// multiply-adds in increasing In order, one chain per output, from zero,
// as in mulRef, the naive twin (which rounds each FMA through float64, so
// the two agree to a rare last-bit difference).
//
// Kernels: Go assembly for amd64 with AVX-512 (VCVTPH2PS for f16, a
// zero-extend and 16-bit shift for bf16) and with AVX2+FMA+F16C, and a
// portable Go path on every other platform.
package half
