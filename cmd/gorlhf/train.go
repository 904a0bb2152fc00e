package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/gorlhf/gorlhf/internal/train"
)

// trainCommands are the offline trainers of `gorlhf train`.
var trainCommands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}{
	{"sft", "supervised fine-tuning on prompt/response records or chats (OpenRLHF train_sft)", runTrainSFT},
	{"rm", "reward model on preference pairs, Bradley–Terry loss (OpenRLHF train_rm)", runTrainRM},
	{"dpo", "DPO / IPO / cDPO on preference pairs against a frozen reference (OpenRLHF train_dpo)", runTrainDPO},
	{"kto", "KTO on unpaired desirable/undesirable samples against a frozen reference (OpenRLHF v0.8 train_kto)", runTrainKTO},
	{"kd", "knowledge distillation from a teacher's token distributions, mixed with SFT (OpenRLHF v0.8 train_kd)", runTrainKD},
	{"prm", "process reward model on step-tagged solutions: reward-token labels at each step tag (OpenRLHF train_prm)", runTrainPRM},
	{"ppo", "RL: PPO / REINFORCE++ / RLOO / GRPO / Dr.GRPO with actor, critic, reward, reference (OpenRLHF train_ppo_ray)", runTrainPPO},
}

// runTrain dispatches `gorlhf train NAME` to trainCommands.
func runTrain(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		trainUsage()
		if len(args) == 0 {
			return fmt.Errorf("train: name a trainer (%s)", trainerNames())
		}
		return flag.ErrHelp
	}
	for _, c := range trainCommands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:])
			if errors.Is(err, train.ErrStopped) {
				fmt.Fprintln(os.Stderr, "gorlhf:", err, "- resume with --ckpt.load_enable")
				return nil
			}
			return err
		}
	}
	trainUsage()
	return fmt.Errorf("train: unknown trainer %q (want one of %s)", args[0], trainerNames())
}

// trainerNames lists the trainers, comma-separated.
func trainerNames() string {
	names := make([]string, len(trainCommands))
	for i, c := range trainCommands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

func trainUsage() {
	fmt.Fprintln(os.Stderr, "Usage: gorlhf train <trainer> [--config run.yaml] [flags]\n\nTrainers:")
	for _, c := range trainCommands {
		fmt.Fprintf(os.Stderr, "  %-5s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'gorlhf train <trainer> --help' for its flags; docs/TRAINING.md has examples.")
}
