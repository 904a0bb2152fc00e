// Command gorlhf aligns language models with RLHF and verifiable rewards.
//
// Usage:
//
//	gorlhf <command> [flags]
//
// Every command prints its flags with --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: a name, a one-line summary and its entry point.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"bench", "measure speed: bench matmul | train | generate | decode | transfer | collective | zero", runBench},
		{"batch_inference", batchInferenceSummary, runBatchInference},
		{"convert", "write a model (HF folder, llama2.c file, stories260K) as a Hugging Face folder, or as GGUF (--to gguf); merge a PEFT LoRA adapter into its base (--merge-lora)", runConvert},
		{"demo", "end-to-end demos on the embedded tiny model: RM + PPO on stories, or --task arithmetic (SFT + GRPO)", runDemo},
		{"generate", "sample completions from a model (prompts from flags or a JSONL file)", runGenerate},
		{"launch", "run training across processes: print a Kubernetes JobSet (launch k8s), or who this process is (launch env)", runLaunch},
		{"serve", "OpenAI-compatible server (serve), a reward model (serve rm), or an environment (serve env)", runServeCmd},
		{"train", "train a model: train sft | rm | dpo | kto | kd | prm | ppo", runTrain},
		{"tokenize", "encode text to token ids (or decode ids) with a tokenizer", runTokenize},
		{"version", "print the version and the compute backend", runVersion},
		{"worker", "host roles of a placed run (started by the local launcher; under Slurm and Kubernetes train ppo becomes one)", runWorker},
	}
}

// usageError is a command line that names no command or an unknown one:
// the usage is on stderr, main adds the message (if any) and exits with
// status 2, as most CLIs do.
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	var bad usageError
	if errors.As(err, &bad) {
		if bad != "" {
			fmt.Fprintln(os.Stderr, "gorlhf:", bad)
		}
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorlhf:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	hintOpenBLASCore()
	tuneGC()
	if len(args) == 0 {
		usage(os.Stderr)
		return usageError("")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	usage(os.Stderr)
	return usageError(fmt.Sprintf("unknown command %q", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gorlhf: RLHF and RL with verifiable rewards, in one Go binary.")
	fmt.Fprintln(w, "\nUsage: gorlhf <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'gorlhf <command> --help' for the flags of a command.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints a usage line before the flag defaults.
func newFlagSet(name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet("gorlhf "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gorlhf %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}
