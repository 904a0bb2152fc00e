// Package openai is the rollout role (role.Rollout) over OpenAI-compatible
// inference servers: gorlhf serve, vLLM, SGLang. It is what `train ppo
// --rollout.backend openai --rollout.urls URL,URL` generates with.
//
// Generation: one POST /v1/completions per prompt, the prompt as token
// ids, n samples and the prompt's seed, return_token_ids and logprobs=0
// (vLLM's shape: choices[].token_ids, prompt_token_ids and
// logprobs.token_logprobs, the raw model's log-probs, which become
// Completion.RawLogProbs). Prompts are spread over the engines by least
// outstanding requests; a sample depends only on its prompt, seed and
// weights, so which engine serves it changes nothing (gorlhf serve samples
// exactly as the in-process engine for the same seed and sample index).
// Each request is retried on its engine (httpjson: a timeout per attempt,
// jittered back-off), then re-sent to another engine when that one is
// gone; an answer that breaks the protocol is an error, never a sample:
// wrong choice count or indices, another prompt echoed, token and
// log-prob counts that differ, more tokens than max_tokens, a finish
// reason other than stop or length, usage that does not add up, and a
// weight_version other than the one last pushed (stale weights).
//
// Weights (LoadWeights): a safetensors snapshot written atomically to a
// folder every engine can read, then loaded by each engine between
// /pause?mode=wait and /resume, through SGLang's /update_weights_from_disk
// (SyncDisk) or vLLM's weight-transfer routes with gorlhf serve's disk
// backend (SyncVLLM). Generation and weight loads exclude each other, so
// every sample of a Generate call comes from the version last pushed.
package openai
