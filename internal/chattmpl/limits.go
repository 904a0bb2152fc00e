package chattmpl

import (
	"context"
	"fmt"
	"time"

	"github.com/ardanlabs/jinja"
)

// Limits bound one rendering, so that a template that loops or recurses
// without end fails with a *LimitError instead of holding a CPU and
// growing memory until the process dies. A zero field means its default.
//
// The bounds are checked where the template runs: at every loop
// iteration, macro or call-block body, range() and piece of output. A
// single expression that builds a huge value at once ("x" * 10**10) is
// not interrupted; Jinja2's sandbox, which HF uses, does not stop it
// either.
type Limits struct {
	// MaxOutputBytes bounds the text produced, counted as written (text a
	// macro returns and its caller prints counts twice). Default 64 MiB.
	MaxOutputBytes int
	// MaxSteps bounds loop iterations, macro and call-block bodies and
	// range() items, together. Default 10,000,000.
	MaxSteps int
	// MaxDepth bounds nested macro calls (recursion). Default 1,000,
	// Python's recursion limit.
	MaxDepth int
	// Timeout bounds the rendering's wall time. Default 10 s.
	Timeout time.Duration
}

// The defaults of Limits, and MaxRange.
const (
	DefaultMaxOutputBytes = 64 << 20
	DefaultMaxSteps       = 10_000_000
	DefaultMaxDepth       = 1000
	DefaultRenderTimeout  = 10 * time.Second
	// MaxRange is the most items range() makes: the limit of Jinja2's
	// sandbox (MAX_RANGE), under which HF renders templates.
	MaxRange = 100_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = DefaultMaxSteps
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultRenderTimeout
	}
	return l
}

// LimitError is why a rendering was stopped: a Limits bound, or its
// context (Err is then the context's error: errors.Is(err,
// context.Canceled) holds).
type LimitError struct {
	Line int    // template line where it stopped; 0 if unknown
	What string // which bound, e.g. "output over 67108864 bytes"
	Err  error  // the context's error, when the context ended it
}

func (e *LimitError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: rendering stopped: %s", e.Line, e.What)
	}
	return "rendering stopped: " + e.What
}

func (e *LimitError) Unwrap() error { return e.Err }

// The functions the instrumented engine source calls (see instrument).
const (
	stepName  = "__chattmpl_step"  // (line): a loop iteration
	enterName = "__chattmpl_enter" // (line): a macro or call-block body starts
	leaveName = "__chattmpl_leave" // (): it ends
	outName   = "__chattmpl_out"   // (bytes, line): literal text is written
)

// checkEvery is how many steps pass between looks at the clock and the
// context.
const checkEvery = 256

// budget is what one rendering may still spend. The engine renders on
// one goroutine, so it needs no lock.
type budget struct {
	lim    Limits
	ctx    context.Context
	end    time.Time
	steps  int
	out    int
	depth  int
	ticks  int
	failed error // the first bound hit; Render reports it, however the engine wraps it
}

func newBudget(ctx context.Context, lim Limits) *budget {
	lim = lim.withDefaults()
	return &budget{lim: lim, ctx: ctx, end: time.Now().Add(lim.Timeout)}
}

func (b *budget) fail(line int, format string, args ...any) error {
	if b.failed == nil {
		b.failed = &LimitError{Line: line, What: fmt.Sprintf(format, args...)}
	}
	return b.failed
}

// spend counts n steps and, every checkEvery, the clock and the context.
// Once a bound is hit every later call fails too.
func (b *budget) spend(n, line int) error {
	if b.failed != nil {
		return b.failed
	}
	b.steps += n
	if b.steps > b.lim.MaxSteps {
		return b.fail(line, "more than %d loop iterations, macro calls and range() items (a loop without end?)", b.lim.MaxSteps)
	}
	b.ticks++
	if b.ticks < checkEvery && n < checkEvery {
		return nil
	}
	b.ticks = 0
	if err := b.ctx.Err(); err != nil {
		if b.failed == nil {
			b.failed = &LimitError{Line: line, What: err.Error(), Err: err}
		}
		return b.failed
	}
	if time.Now().After(b.end) {
		return b.fail(line, "took longer than %v", b.lim.Timeout)
	}
	return nil
}

// write counts n bytes of output.
func (b *budget) write(n, line int) error {
	b.out += n
	if b.out > b.lim.MaxOutputBytes {
		return b.fail(line, "output over %d bytes", b.lim.MaxOutputBytes)
	}
	return b.spend(0, line)
}

// functions returns the render variables the instrumented source calls,
// the str filter that counts what it prints, and a range() bounded as in
// Jinja2's sandbox.
func (b *budget) functions(vars map[string]jinja.Value) {
	empty := jinja.NewString("")
	vars[stepName] = jinja.NewCallable(stepName, func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		return empty, b.spend(1, intArg(args, 0))
	})
	vars[enterName] = jinja.NewCallable(enterName, func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		line := intArg(args, 0)
		if b.depth++; b.depth > b.lim.MaxDepth {
			return empty, b.fail(line, "macro calls nested deeper than %d (a recursion without end?)", b.lim.MaxDepth)
		}
		return empty, b.spend(1, line)
	})
	vars[leaveName] = jinja.NewCallable(leaveName, func([]jinja.Value, map[string]jinja.Value) (jinja.Value, error) {
		b.depth--
		return empty, nil
	})
	vars[outName] = jinja.NewCallable(outName, func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		return empty, b.write(intArg(args, 0), intArg(args, 1))
	})
	vars[strName] = jinja.NewCallable("str", func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error) {
		v, err := pyStrFilter(args, kw)
		if err != nil {
			return v, err
		}
		return v, b.write(len(v.AsString()), 0)
	})
	vars["range"] = jinja.NewCallable("range", b.rangeFn)
}

func intArg(args []jinja.Value, i int) int {
	if i < len(args) && args[i].IsInt() {
		return int(args[i].AsInt())
	}
	return 0
}

// rangeFn is Python's range() as Jinja2's sandbox allows it: integer
// arguments, at most MaxRange items. The items count as steps.
func (b *budget) rangeFn(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) < 1 || len(args) > 3 {
		return jinja.Undefined(), fmt.Errorf("range expected 1 to 3 arguments, got %d", len(args))
	}
	n := make([]int64, len(args))
	for i, a := range args {
		if !a.IsInt() {
			return jinja.Undefined(), fmt.Errorf("range: %s is not an integer", pyRepr(a))
		}
		n[i] = a.AsInt()
	}
	start, stop, step := int64(0), n[0], int64(1)
	if len(n) > 1 {
		start, stop = n[0], n[1]
	}
	if len(n) > 2 {
		step = n[2]
	}
	if step == 0 {
		return jinja.Undefined(), fmt.Errorf("range() arg 3 must not be zero")
	}
	count := rangeLen(start, stop, step)
	if count > MaxRange {
		return jinja.Undefined(), b.fail(0, "range of %d items: the sandbox allows at most %d (as Jinja2's)", count, MaxRange)
	}
	if err := b.spend(int(count), 0); err != nil {
		return jinja.Undefined(), err
	}
	items := make([]jinja.Value, count)
	for i := range items {
		items[i] = jinja.NewInt(start + int64(i)*step)
	}
	return jinja.NewList(items), nil
}

// rangeLen is len(range(start, stop, step)) without overflow.
func rangeLen(start, stop, step int64) uint64 {
	switch {
	case step > 0 && stop > start:
		return (uint64(stop)-uint64(start)-1)/uint64(step) + 1
	case step < 0 && start > stop:
		return (uint64(start)-uint64(stop)-1)/(uint64(-(step+1))+1) + 1
	}
	return 0
}

// instrument inserts the budget's calls into lexed tokens: a step at the
// start of every loop body, enter and leave around every macro and
// call-block body, and before every piece of literal text its length.
// The calls print nothing, so the output is unchanged. checkBlocks has
// already verified the nesting.
func instrument(toks []token) []token {
	out := make([]token, 0, len(toks)+len(toks)/2)
	var open []string // keywords of the open blocks
	hook := func(line int, format string, args ...any) {
		out = append(out, token{kind: tokHook, body: fmt.Sprintf(format, args...), line: line})
	}
	for _, t := range toks {
		switch t.kind {
		case tokText:
			hook(t.line, "%s(%d, %d)", outName, len(t.body), t.line)
			out = append(out, t)
			continue
		case tokBlock:
		default:
			out = append(out, t)
			continue
		}
		kw, opens, closes := blockKind(t.body)
		if closes && len(open) > 0 {
			if top := open[len(open)-1]; top == "macro" || top == "call" {
				hook(t.line, "%s()", leaveName)
			}
			open = open[:len(open)-1]
		}
		out = append(out, t)
		if opens {
			open = append(open, kw)
			switch kw {
			case "for":
				hook(t.line, "%s(%d)", stepName, t.line)
			case "macro", "call":
				hook(t.line, "%s(%d)", enterName, t.line)
			}
		}
	}
	return out
}
