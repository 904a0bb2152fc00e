package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestCommands_Help: every command and subcommand answers --help without
// error or side effects.
func TestCommands_Help(t *testing.T) {
	cmds := [][]string{{"bench", "matmul"}, {"bench", "train"}, {"bench", "generate"}, {"serve", "rm"}, {"serve", "env"},
		{"train", "sft"}, {"train", "rm"}, {"train", "dpo"}, {"train", "ppo"}}
	for _, c := range commands() {
		cmds = append(cmds, []string{c.name})
	}
	for _, c := range cmds {
		t.Run(strings.Join(c, "_"), func(t *testing.T) {
			err := run(context.Background(), append(c, "--help"), io.Discard)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("%v --help: %v", c, err)
			}
		})
	}
	if err := run(context.Background(), []string{"nope"}, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}
