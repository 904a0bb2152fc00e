package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// NewRunLogger returns the structured log of a run: JSON lines with
// timestamps into file (train.log) and text without timestamps to console.
// Every record carries trainer=name.
func NewRunLogger(file, console io.Writer, name string) *slog.Logger {
	return slog.New(fanout{
		slog.NewJSONHandler(file, nil),
		slog.NewTextHandler(console, &slog.HandlerOptions{ReplaceAttr: dropTime}),
	}).With("trainer", name)
}

// dropTime leaves the timestamp out of console lines (the file has it).
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// fanout is a slog.Handler that passes every record to all its handlers.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

func sortedKeys(m map[string]float64) []string { return slices.Sorted(maps.Keys(m)) }

// configDiff lists the dotted keys whose values differ between two JSON
// configurations ("" when they agree).
func configDiff(a, b json.RawMessage) string {
	fa, fb := map[string]any{}, map[string]any{}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return "(unreadable saved config)"
	}
	flattenJSON("", va, fa)
	flattenJSON("", vb, fb)
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(fa)) {
		if !reflect.DeepEqual(fa[k], fb[k]) {
			diff = append(diff, fmt.Sprintf("%s: %v → %v", k, fa[k], fb[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fb)) {
		if _, ok := fa[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s: (absent) → %v", k, fb[k]))
		}
	}
	return strings.Join(diff, "; ")
}

func flattenJSON(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return
	}
	for k, e := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		flattenJSON(key, e, out)
	}
}
