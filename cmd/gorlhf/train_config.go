package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configEntry is one setting of a run file: a dotted flag name, its value
// as flag text, and the line it came from.
type configEntry struct {
	key, value string
	line       int
}

// applyConfigFile sets, from a YAML (or JSON) run file, every flag that the
// command line did not set. Keys are flag names, written dotted
// ("train.batch_size: 32") or nested ("train: {batch_size: 32}"); a list
// value is joined with commas ("adam.betas: [0.9, 0.95]"). Unknown keys
// and bad values are errors naming the file and line.
func applyConfigFile(fs *flag.FlagSet, path string, aliases map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	entries, err := parseRunFile(b)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[canonical(f.Name, aliases)] = true })
	seen := map[string]int{}
	for _, e := range entries {
		name := canonical(e.key, aliases)
		if fs.Lookup(e.key) == nil || name == "config" {
			return fmt.Errorf("config %s:%d: unknown setting %q (run with --help for the flags)", path, e.line, e.key)
		}
		if prev, dup := seen[name]; dup {
			return fmt.Errorf("config %s:%d: %q is already set on line %d", path, e.line, e.key, prev)
		}
		seen[name] = e.line
		if set[name] {
			continue // the command line wins
		}
		if err := fs.Set(name, e.value); err != nil {
			return fmt.Errorf("config %s:%d: %s: %w", path, e.line, e.key, err)
		}
	}
	return nil
}

func canonical(name string, aliases map[string]string) string {
	if c, ok := aliases[name]; ok {
		return c
	}
	return name
}

// parseRunFile flattens a YAML mapping into dotted keys, in file order.
// The file holds one document: anything after it (a second document,
// trailing text after a JSON object) is an error, not silently dropped.
func parseRunFile(b []byte) ([]configEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fmt.Errorf("line %d: a second document after the settings (a run file holds one mapping)", more.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("after the settings: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of flag names to values", root.Line)
	}
	var out []configEntry
	return out, flattenNode("", root, &out)
}

func flattenNode(prefix string, n *yaml.Node, out *[]configEntry) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := strings.TrimPrefix(k.Value, "--")
		if prefix != "" {
			key = prefix + "." + key
		}
		switch v.Kind {
		case yaml.MappingNode:
			if err := flattenNode(key, v, out); err != nil {
				return err
			}
		case yaml.SequenceNode:
			var parts []string
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: %s: list items must be plain values", e.Line, key)
				}
				parts = append(parts, e.Value)
			}
			*out = append(*out, configEntry{key, strings.Join(parts, ","), k.Line})
		case yaml.ScalarNode:
			val := v.Value
			if v.Tag == "!!null" {
				val = ""
			}
			*out = append(*out, configEntry{key, val, k.Line})
		default:
			return fmt.Errorf("line %d: %s: unsupported value", v.Line, key)
		}
	}
	return nil
}
