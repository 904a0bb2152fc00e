package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/gorlhf/gorlhf/internal/batchinfer"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
)

// batchFlags are the flags of `gorlhf batch_inference`, named as
// OpenRLHF's cli/batch_inference.py names them.
type batchFlags struct {
	task, pretrain, dataset, output   string
	inputKey, outputKey, labelKey     string
	inputTemplate, postProcessor      string
	chat, greedy, prefixCaching       bool
	maxSamples, maxLen, promptMaxLen  int
	maxNewTokens, bestOfN, microBatch int
	iter, rolloutBatch, maxNumSeqs    int
	topP, temperature                 float64
	seed                              uint64
	rule                              grade.RuleConfig
	aggregation                       prmodel.Aggregation
	engine                            engineFlags
}

func (f *batchFlags) register(fs *flag.FlagSet) {
	f.engine.register(fs)
	fs.StringVar(&f.task, "eval_task", "", "generate (N samples per prompt with gorlhf's rollout engine; generate_vllm is accepted as the same) or rm (score input/output records)")
	fs.StringVar(&f.pretrain, "pretrain", "", "generate: the policy (HF folder, llama2.c file, Hub id in the local cache, or stories260K); rm: a reward model or a process reward model (folder with prm.json)")
	fs.StringVar(&f.dataset, "dataset", "", "input: prompts (generate) or records with input and output fields (rm); comma-separated .jsonl, .json or .parquet files")
	fs.IntVar(&f.maxSamples, "max_samples", 100000000, "read at most this many records")
	fs.StringVar(&f.inputKey, "input_key", "input", "field holding the prompt (a string or a chat)")
	fs.StringVar(&f.outputKey, "output_key", "output", "rm: field holding the response")
	fs.StringVar(&f.labelKey, "label_key", "", "field holding the reference a rule grader compares with; generate copies it into its output as \"label\"")
	fs.BoolVar(&f.chat, "apply_chat_template", false, "generate: render prompts with the model's chat template")
	fs.StringVar(&f.inputTemplate, "input_template", "", `generate: plain-text prompt template, "{}" is the prompt`)
	fs.IntVar(&f.maxLen, "max_len", 2048, "rm: max tokens of a scored sequence")
	fs.StringVar(&f.output, "output_path", "", "output JSON Lines file")
	fs.IntVar(&f.promptMaxLen, "prompt_max_len", 1024, "generate: prompts longer than this many tokens are an error")
	fs.IntVar(&f.maxNewTokens, "max_new_tokens", 1024, "generate: most new tokens per sample (lowered to what fits in the model's context)")
	fs.BoolVar(&f.greedy, "greedy_sampling", false, "generate: greedy decoding (temperature 0)")
	fs.Float64Var(&f.topP, "top_p", 1, "generate: nucleus sampling mass (1 = off)")
	fs.Float64Var(&f.temperature, "temperature", 1, "generate: sampling temperature")
	fs.IntVar(&f.bestOfN, "best_of_n", 1, "generate: samples per prompt")
	fs.StringVar(&f.postProcessor, "post_processor", "", "rm: rs (rejection sampling: the best output per input, SFT data) or iter_dpo (the best and the worst output per input, a preference pair)")
	fs.IntVar(&f.microBatch, "micro_batch_size", 16, "rm: sequences per forward pass")
	fs.Uint64Var(&f.seed, "seed", 1234, "generate: prompt i samples with seed+i")
	fs.IntVar(&f.iter, "iter", -1, "generate: use prompts [iter·rollout_batch_size, (iter+1)·rollout_batch_size) (−1: all)")
	fs.IntVar(&f.rolloutBatch, "rollout_batch_size", 2048, "generate: prompts per --iter slice")
	fs.BoolVar(&f.prefixCaching, "enable_prefix_caching", false, "generate: keep full KV blocks for later prompts with the same prefix")
	fs.IntVar(&f.maxNumSeqs, "max_num_seqs", generate.DefaultConfig().MaxSeqs, "generate: most sequences decoded together")
	fs.Var(&f.rule.Kind, "rule", "rm: score with a built-in grader instead of a model: math, exact, regex, length or format (labels from --label_key)")
	fs.StringVar(&f.rule.Pattern, "rule_pattern", "", "rm: the pattern of --rule regex or format")
	f.aggregation = prmodel.Min
	fs.Var(&f.aggregation, "prm_aggregation", "rm with a process reward model: how step scores become the reward: min, prod, mean or last")
}

// runBatchInference is `gorlhf batch_inference`.
func runBatchInference(ctx context.Context, args []string) error {
	fs := newFlagSet("batch_inference", "batch_inference --eval_task generate|rm --pretrain M --dataset D --output_path OUT [flags]")
	var f batchFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("batch_inference: unexpected argument %q", fs.Arg(0))
	}
	if f.output == "" || f.dataset == "" {
		return fmt.Errorf("batch_inference: --dataset and --output_path are required")
	}
	if f.rule.Kind != "" {
		f.rule.Length = grade.DefaultRuleConfig().Length
		if err := f.rule.Validate(); err != nil {
			return fmt.Errorf("batch_inference: --rule: %w", err)
		}
	}
	switch f.task {
	case "generate", "generate_vllm":
		if f.postProcessor != "" {
			return fmt.Errorf("batch_inference: --post_processor applies to --eval_task rm")
		}
		if err := f.engine.apply(); err != nil {
			return err
		}
		return f.generate(ctx)
	case "rm":
		if err := f.engine.apply(); err != nil {
			return err
		}
		return f.score(ctx)
	}
	return fmt.Errorf("batch_inference: --eval_task %q: want generate, generate_vllm or rm", f.task)
}

// generate writes best_of_n samples per prompt.
func (f *batchFlags) generate(ctx context.Context) error {
	if f.pretrain == "" {
		return fmt.Errorf("batch_inference: --pretrain (the policy) is required")
	}
	rf := rolloutFlags{model: f.pretrain, bos: "auto", engine: generate.DefaultConfig()}
	rf.engine.PrefixCaching, rf.engine.MaxSeqs = f.prefixCaching, f.maxNumSeqs
	rm, err := rf.open()
	if err != nil {
		return err
	}
	enc := data.PromptEncoder{Tok: rm.Tok, ChatText: f.chat, InputTemplate: f.inputTemplate, BOS: rm.BOS(), MaxTokens: f.promptMaxLen}
	if f.chat {
		if enc.Template, err = rm.NeedTemplate(); err != nil {
			return fmt.Errorf("batch_inference: --apply_chat_template: %w", err)
		}
	}
	if err := enc.Validate(); err != nil {
		return err
	}
	prompts, rep, err := enc.ReadPrompts(f.dataset, f.maxSamples, data.PromptKeys{InputKey: f.inputKey, LabelKey: f.labelKey})
	if err != nil {
		return fmt.Errorf("batch_inference: %w", err)
	}
	fmt.Fprintln(os.Stderr, rep.String())
	if f.iter >= 0 {
		lo := min(f.iter*f.rolloutBatch, len(prompts))
		prompts = prompts[lo:min(lo+f.rolloutBatch, len(prompts))]
		if len(prompts) == 0 {
			return fmt.Errorf("batch_inference: --iter %d: no prompts left (%d per iteration)", f.iter, f.rolloutBatch)
		}
	}
	eng, err := rm.newEngine(rf.engine)
	if err != nil {
		return err
	}
	defer eng.Close()
	p := generate.SamplingParams{MaxNewTokens: f.maxNewTokens, Temperature: float32(f.temperature), TopP: float32(f.topP), Seed: f.seed}
	if f.greedy {
		p.Temperature = 0
	}
	recs, err := batchinfer.Generate(ctx, eng, prompts, f.bestOfN, p)
	if err != nil {
		return err
	}
	if err := batchinfer.WriteJSONL(f.output, recs); err != nil {
		return err
	}
	fmt.Printf("generated %d samples (%d prompts × %d) → %s\n", len(recs), len(prompts), f.bestOfN, f.output)
	return nil
}

// score rewards every record, prints the mean and std, and applies the
// post-processor.
func (f *batchFlags) score(ctx context.Context) error {
	recs, err := batchinfer.ReadRecords(f.dataset, f.maxSamples, f.inputKey, f.outputKey, f.labelKey)
	if err != nil {
		return err
	}
	if f.postProcessor != "" && f.postProcessor != "rs" && f.postProcessor != "iter_dpo" && f.postProcessor != "null" {
		return fmt.Errorf("batch_inference: --post_processor %q: want rs or iter_dpo", f.postProcessor)
	}
	src, err := batchinfer.OpenSource(batchinfer.SourceOptions{Model: f.pretrain, Rule: f.rule, Load: loadOptions(),
		MaxLen: f.maxLen, BatchSize: f.microBatch, Aggregation: f.aggregation})
	if err != nil {
		return err
	}
	if err := batchinfer.Score(ctx, src, recs, f.microBatch*4); err != nil {
		return err
	}
	mean, std := batchinfer.MeanStd(recs)
	fmt.Printf("Reward mean: %.6f, std: %.6f (%d records)\n", mean, std, len(recs))
	switch f.postProcessor {
	case "rs":
		best, err := batchinfer.RejectionSampling(recs)
		if err != nil {
			return err
		}
		m, _ := batchinfer.MeanStd(best)
		fmt.Printf("rs: kept the best of %d records for each of %d inputs (their mean reward %.6f)\n", len(recs), len(best), m)
		return batchinfer.WriteJSONL(f.output, best)
	case "iter_dpo":
		pairs, ties, err := batchinfer.IterativeDPO(recs)
		if err != nil {
			return err
		}
		fmt.Printf("iter_dpo: %d preference pairs (%d inputs whose outputs all tie left out)\n", len(pairs), ties)
		if len(pairs) == 0 {
			return fmt.Errorf("batch_inference: iter_dpo: no input has outputs with different rewards")
		}
		return batchinfer.WriteJSONL(f.output, pairs)
	}
	return batchinfer.WriteJSONL(f.output, recs)
}

// batchInferenceSummary is the line of `gorlhf --help`.
const batchInferenceSummary = "OpenRLHF batch_inference: N samples per prompt, scores (RM, PRM, rule), best-of-n (rs) and iter_dpo data"
