package main

import (
	"context"
	"fmt"
)

func runBench(ctx context.Context, args []string) error {
	const usage = "usage: gorlhf bench <matmul|train|generate|decode|transfer|collective|zero> [flags]  (gorlhf bench <what> --help for flags)"
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "matmul":
		return runBenchMatmul(ctx, args[1:])
	case "train":
		return runBenchTrain(ctx, args[1:])
	case "generate":
		return runBenchGenerate(ctx, args[1:])
	case "decode":
		return runBenchDecode(ctx, args[1:])
	case "transfer":
		return runBenchTransfer(ctx, args[1:])
	case "collective":
		return runBenchCollective(ctx, args[1:])
	case "zero":
		return runBenchZero(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown benchmark %q; %s", args[0], usage)
}
