package env

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Factory makes a fresh environment instance: a rollout calls it once per
// episode, so that episodes can run in parallel.
type Factory func() Env

// builtin is a named environment and how to configure it from arguments.
type builtin struct {
	help string
	open func(args map[string]string) (Factory, error)
}

// builtins are the environments Open knows (gorlhf train ppo --agent.env).
var builtins = map[string]builtin{
	"arithmetic": {
		help: "chained arithmetic questions answered one per turn; args steps (3), max (9), seed (1)",
		open: openArithmetic,
	},
	"remote": {
		help: "an environment server (gorlhf serve env, or your own: docs/RLVR.md); args url (required), timeout (60s), attempts (4)",
		open: func(args map[string]string) (Factory, error) { return openRemote(args, "") },
	},
	"chain": {
		help: `continues a prompt "a+b=" with follow-ups "\n27+5=" one per turn; args steps (3), max_add (9), cap (98), seed (1)`,
		open: openChain,
	},
}

// Names lists the built-in environments with a line of help each.
func Names() []string {
	var out []string
	for name, b := range builtins {
		out = append(out, name+": "+b.help)
	}
	slices.Sort(out)
	return out
}

// Open returns the factory of the built-in environment name, configured
// by args: comma-separated key=value pairs ("steps=3,max=9"). Unknown
// names and keys and bad values are errors that name them.
func Open(name, args string) (Factory, error) {
	b, ok := builtins[name]
	if !ok {
		var known []string
		for n := range builtins {
			known = append(known, n)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("env: unknown environment %q (built-in: %s)", name, strings.Join(known, ", "))
	}
	kv, err := parseArgs(args)
	if err != nil {
		return nil, fmt.Errorf("env: %s: %w", name, err)
	}
	f, err := b.open(kv)
	if err != nil {
		return nil, fmt.Errorf("env: %s: %w", name, err)
	}
	return f, nil
}

// parseArgs splits "k=v,k=v"; an empty string has no arguments.
func parseArgs(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q is not key=value", part)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("argument %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// openArithmetic configures Arithmetic from steps, max and seed.
func openArithmetic(args map[string]string) (Factory, error) {
	c := DefaultArithmeticConfig()
	if err := setArgs(args, map[string]any{"steps": &c.Steps, "max": &c.Max, "seed": &c.Seed}); err != nil {
		return nil, err
	}
	return ArithmeticFactory(c)
}

// openChain configures Chain from steps, max_add, cap and seed.
func openChain(args map[string]string) (Factory, error) {
	c := DefaultChainConfig()
	if err := setArgs(args, map[string]any{"steps": &c.Steps, "max_add": &c.MaxAdd, "cap": &c.Cap, "seed": &c.Seed}); err != nil {
		return nil, err
	}
	return ChainFactory(c)
}

// OpenRemote is Open("remote", args) with a bearer token for the server
// (the command line reads it from the environment, not from args, which
// other users of the machine can see).
func OpenRemote(args, apiKey string) (Factory, error) {
	kv, err := parseArgs(args)
	if err != nil {
		return nil, fmt.Errorf("env: remote: %w", err)
	}
	f, err := openRemote(kv, apiKey)
	if err != nil {
		return nil, fmt.Errorf("env: remote: %w", err)
	}
	return f, nil
}

// openRemote configures a remote environment client from url, timeout
// and attempts.
func openRemote(args map[string]string, apiKey string) (Factory, error) {
	c := DefaultRemoteConfig()
	c.HTTP.APIKey = apiKey
	if err := setArgs(args, map[string]any{"url": &c.URL, "timeout": &c.HTTP.Timeout, "attempts": &c.HTTP.Attempts}); err != nil {
		return nil, err
	}
	if c.URL == "" {
		return nil, errors.New("needs url=http://host:port (e.g. --agent.env_args url=http://127.0.0.1:5100)")
	}
	return RemoteFactory(c)
}

// setArgs parses every argument into its field (*int, *uint64, *string or
// *time.Duration);
// an argument with no field is an error that lists the known ones.
func setArgs(args map[string]string, fields map[string]any) error {
	for k, v := range args {
		var err error
		switch p := fields[k].(type) {
		case *int:
			*p, err = strconv.Atoi(v)
		case *uint64:
			*p, err = strconv.ParseUint(v, 10, 64)
		case *string:
			*p = v
		case *time.Duration:
			if *p, err = time.ParseDuration(v); err != nil {
				return fmt.Errorf("argument %s=%q: not a duration like 30s", k, v)
			}
		default:
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			slices.Sort(known)
			return fmt.Errorf("unknown argument %q (want %s)", k, strings.Join(known, ", "))
		}
		if err != nil {
			return fmt.Errorf("argument %s=%q: not an integer", k, v)
		}
	}
	return nil
}
