// Package recipe holds gorlhf's named recipes for RL with verifiable
// rewards: tasks whose answers a program can check, the data they need,
// and the trainer settings that make them work.
//
// The arithmetic task (ArithmeticConfig) is synthetic: short problems
// such as "23+4=" answered with the bare number, a problem space small
// enough to enumerate so that the held-out problems are split off exactly
// (never seen in SFT or RL data), and an exact-match verifier from package
// reward. RunArithmeticDemo is `gorlhf demo --task arithmetic`: a brief
// SFT of stories260K on the answer format, then GRPO with that verifier,
// held-out accuracy measured before and after (Evaluate).
//
// StepDataConfig writes the step-tagged arithmetic solutions of the
// process-reward-model recipe (recipes/data/prm_arithmetic_*.jsonl, for
// gorlhf train prm): right and corrupted multi-step chains, labelled per
// step as Math-Shepherd labels them.
//
// The GSM8K recipe needs no code of its own: it is a run file,
// recipes/gsm8k_grpo.yaml, for `gorlhf train ppo --config` (the math
// grader of package reward on the dataset's "#### N" labels).
package recipe
