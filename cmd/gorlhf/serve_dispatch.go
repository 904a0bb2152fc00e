package main

import "context"

// runServeCmd dispatches `gorlhf serve` (OpenAI-compatible generation server)
// and `gorlhf serve rm` (reward model with OpenRLHF's /get_reward protocol).
func runServeCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "rm" {
		return runServeRM(ctx, args[1:])
	}
	return runServe(ctx, args)
}
