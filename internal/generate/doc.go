// Package generate is gorlhf's rollout engine: batched sampling from a
// causal LM with a paged KV cache, continuous batching, chunked prefill
// and prefix sharing, returning what RL needs (token ids, the log-prob of
// each token under the sampling distribution and under the raw model, the
// finish reason and the policy version).
//
// Generation is most of an RLHF run's wall time (OpenRLHF hands it to
// vLLM), so the engine borrows vLLM's design (Kwon et al. 2023,
// https://arxiv.org/abs/2309.06180) scaled down to a CPU:
//
//   - KV cache (PagedCache): fixed-size blocks from a free list, a block
//     table per sequence, reference counts and copy-on-write. The n
//     samples of a prompt (GRPO/RLOO groups) share its prefilled blocks,
//     so the prompt is computed and stored once.
//   - Prefix caching (Config.PrefixCaching, off by default): full blocks
//     stay in the cache after their request, keyed by a chain hash of the
//     tokens up to their end (vLLM's automatic prefix caching); a later
//     prompt adopts the blocks of its longest cached prefix and prefills
//     only the rest (always the last token). Idle cached blocks count as
//     free: allocation evicts them least-recently-used before preempting
//     anything. LoadWeights forgets them all.
//   - Scheduler: one goroutine owns the model and the cache. Each step
//     feeds one token per decoding sequence plus prompt chunks up to a
//     token budget, as a single ragged model.Batch: every projection and
//     MLP is one GEMM over all rows; attention reads each sequence's
//     blocks. A prompt's chunk is capped (MaxPrefillChunk) until every
//     waiting prompt has had its share, so one long prompt never holds
//     back the requests behind it. New requests join between steps; when
//     blocks run out the youngest sequence is preempted and later
//     recomputed (see scheduler).
//   - Context: a sequence never passes the model's position limit (its
//     context length); a prompt that fills it is refused, samples end
//     there with FinishLength, and CheckLength/FitLength give front ends
//     vLLM's strict rule for lengths a user chose (LengthError).
//   - Sampling: greedy, temperature, top-k, top-p, min-p, stop token ids,
//     stop strings, length limits, n samples. Each sample's generator is
//     seeded from (request seed, sample index) only, and attention and
//     sampling compute each row on its own, so a request's tokens do not
//     depend on what else is running. One caveat: package gemm picks
//     kernels by row count (a dot-product path for few rows, extra
//     accumulators for short tiles), so a GEMM row's last bits can depend
//     on the batch size; log-probs then move by float rounding (~1e-6)
//     and a token could only change on an exact tie of a draw with a CDF
//     boundary. TestEngine_BatchInvariance checks tokens alone vs busy.
//   - Weights: LoadWeights copies a trainer's parameters in place between
//     steps, after the admitted requests finish (they finish on the old
//     version; each completion reports its version).
//
// Naive is the twin every fast path is tested against: full recompute,
// one sequence at a time.
package generate
