package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// runTokenize encodes text to ids (or decodes ids to text) so that a
// tokenizer can be checked from the shell against other tools.
func runTokenize(ctx context.Context, args []string) error {
	fs := newFlagSet("tokenize", "tokenize --tokenizer PATH [--decode] [--special] [TEXT]")
	path := fs.String("tokenizer", "", "tokenizer.json, tokenizer.json.gz, a model folder, a llama2.c tokenizer .bin, or "+load.DefaultModel+" (the embedded model's tok512) (required)")
	decode := fs.Bool("decode", false, "input is a JSON array of ids; print their text")
	special := fs.Bool("special", false, "encode special tokens written in the text (e.g. <|im_start|>) as their ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return errors.New("tokenize: --tokenizer is required")
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("tokenize: want at most one TEXT argument, got %d (quote the text)", fs.NArg())
	}
	input, err := tokenizeInput(fs.Args())
	if err != nil {
		return err
	}
	tok, err := openTokenizer(*path)
	if err != nil {
		return err
	}
	if *decode {
		return printDecoded(os.Stdout, tok, input)
	}
	ids := tok.EncodeWith(input, tokenizer.EncodeOptions{ParseSpecial: *special})
	if ids == nil {
		ids = []int{}
	}
	line, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", line)
	return err
}

// openTokenizer loads the tokenizer at path; the embedded model's name
// (when no file of that name exists) is its tok512, as every command that
// takes a model accepts that name.
func openTokenizer(path string) (tokenizer.Tokenizer, error) {
	if path == load.DefaultModel {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return tokenizer.ParseLlama2C(assets.Tok512())
		}
	}
	return tokenizer.Load(path)
}

// tokenizeInput is the TEXT argument, or all of stdin, verbatim (a trailing
// newline from stdin is part of the text).
func tokenizeInput(args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return "", fmt.Errorf("tokenize: read stdin: %w", err)
	}
	return string(b), nil
}

// printDecoded parses a JSON array of ids and prints their text.
func printDecoded(w io.Writer, tok tokenizer.Tokenizer, input string) error {
	var ids []int
	if err := json.Unmarshal([]byte(input), &ids); err != nil {
		return fmt.Errorf("tokenize: --decode wants a JSON array of ids: %w", err)
	}
	for i, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			return fmt.Errorf("tokenize: id %d (position %d) is outside the vocabulary [0, %d)", id, i, tok.VocabSize())
		}
	}
	_, err := fmt.Fprintln(w, tok.Decode(ids))
	return err
}
