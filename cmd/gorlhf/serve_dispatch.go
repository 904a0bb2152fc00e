package main

import "context"

// runServeCmd dispatches `gorlhf serve` (OpenAI-compatible generation server),
// `gorlhf serve rm` (reward model with OpenRLHF's /get_reward protocol) and
// `gorlhf serve env` (an environment with the remote environment protocol).
func runServeCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "rm" {
		return runServeRM(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "env" {
		return runServeEnv(ctx, args[1:])
	}
	return runServe(ctx, args)
}
