package chattmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/ardanlabs/jinja"
)

// toValue converts a Go value into a template value. It exists (rather than
// jinja.FromGoValue) because key order is visible in rendered prompts: tojson
// of a tool schema prints keys in insertion order, exactly as Python's dict
// does. json.RawMessage is therefore decoded with its key order intact, while
// plain Go maps, which have no order, get sorted keys. Unsupported types are
// an error instead of a silent Undefined.
func toValue(v any) (jinja.Value, error) {
	switch x := v.(type) {
	case nil:
		return jinja.None(), nil
	case jinja.Value:
		return x, nil
	case bool:
		return jinja.NewBool(x), nil
	case string:
		return jinja.NewString(x), nil
	case int:
		return jinja.NewInt(int64(x)), nil
	case int8:
		return jinja.NewInt(int64(x)), nil
	case int16:
		return jinja.NewInt(int64(x)), nil
	case int32:
		return jinja.NewInt(int64(x)), nil
	case int64:
		return jinja.NewInt(x), nil
	case uint8:
		return jinja.NewInt(int64(x)), nil
	case uint16:
		return jinja.NewInt(int64(x)), nil
	case uint32:
		return jinja.NewInt(int64(x)), nil
	case uint:
		return uintValue(uint64(x))
	case uint64:
		return uintValue(x)
	case float32:
		return jinja.NewFloat(float64(x)), nil
	case float64:
		return jinja.NewFloat(x), nil
	case json.Number:
		return numberValue(string(x))
	case json.RawMessage:
		return decodeJSONValue(x)
	case []any:
		return listValue(len(x), func(i int) any { return x[i] })
	case map[string]any:
		return mapValue(x)
	}
	return reflectValue(v)
}

func uintValue(x uint64) (jinja.Value, error) {
	if x > math.MaxInt64 {
		return jinja.Undefined(), fmt.Errorf("integer %d does not fit in int64", x)
	}
	return jinja.NewInt(int64(x)), nil
}

// reflectValue handles named slice and map types (e.g. []map[string]any).
func reflectValue(v any) (jinja.Value, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return listValue(rv.Len(), func(i int) any { return rv.Index(i).Interface() })
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return mapValue(m)
	case reflect.Pointer:
		if rv.IsNil() {
			return jinja.None(), nil
		}
		return toValue(rv.Elem().Interface())
	}
	return jinja.Undefined(), fmt.Errorf("unsupported value of type %T", v)
}

func listValue(n int, at func(int) any) (jinja.Value, error) {
	items := make([]jinja.Value, n)
	for i := range n {
		it, err := toValue(at(i))
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("[%d]: %w", i, err)
		}
		items[i] = it
	}
	return jinja.NewList(items), nil
}

func mapValue(m map[string]any) (jinja.Value, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := jinja.NewDict()
	for _, k := range keys {
		it, err := toValue(m[k])
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("%q: %w", k, err)
		}
		d.AsDict().Set(k, it)
	}
	return d, nil
}

// numberValue keeps JSON integers as ints (Python's json.loads does too, and
// tojson prints 3 rather than 3.0) and everything else as floats. Integers
// beyond int64 become floats, where Python would keep an exact big int.
func numberValue(s string) (jinja.Value, error) {
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return jinja.NewInt(n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return jinja.Undefined(), fmt.Errorf("bad JSON number %q: %w", s, err)
	}
	return jinja.NewFloat(f), nil
}

// decodeJSONValue decodes one JSON document into a template value, keeping
// object keys in document order (as Python's json.loads does).
func decodeJSONValue(raw []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeJSONToken(dec, 0)
	if err != nil {
		return jinja.Undefined(), fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return jinja.Undefined(), fmt.Errorf("decode JSON: trailing data after value")
	}
	return v, nil
}

func decodeJSONToken(dec *json.Decoder, depth int) (jinja.Value, error) {
	if depth > 512 {
		return jinja.Undefined(), fmt.Errorf("nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return jinja.Undefined(), err
	}
	switch x := t.(type) {
	case nil:
		return jinja.None(), nil
	case bool:
		return jinja.NewBool(x), nil
	case string:
		return jinja.NewString(x), nil
	case json.Number:
		return numberValue(string(x))
	case json.Delim:
		if x == '[' {
			var items []jinja.Value
			for dec.More() {
				it, err := decodeJSONToken(dec, depth+1)
				if err != nil {
					return jinja.Undefined(), err
				}
				items = append(items, it)
			}
			_, err := dec.Token() // ']'
			return jinja.NewList(items), err
		}
		d := jinja.NewDict()
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return jinja.Undefined(), err
			}
			key, _ := kt.(string)
			val, err := decodeJSONToken(dec, depth+1)
			if err != nil {
				return jinja.Undefined(), err
			}
			d.AsDict().Set(key, val) // a repeated key keeps its first position and last value, as in Python
		}
		_, err := dec.Token() // '}'
		return d, err
	}
	return jinja.Undefined(), fmt.Errorf("unexpected JSON token %v", t)
}

// messageValue builds the dict a template sees for one message. Optional
// fields are left out when empty rather than set to "", because templates
// test them with `is defined` (Qwen3 takes reasoning_content verbatim when
// it is defined, and otherwise parses <think> out of content).
func messageValue(m Message) (jinja.Value, error) {
	v := jinja.NewDict()
	d := v.AsDict()
	d.Set("role", jinja.NewString(m.Role))
	d.Set("content", jinja.NewString(m.Content))
	if m.ReasoningContent != "" {
		d.Set("reasoning_content", jinja.NewString(m.ReasoningContent))
	}
	if m.Name != "" {
		d.Set("name", jinja.NewString(m.Name))
	}
	if m.ToolCallID != "" {
		d.Set("tool_call_id", jinja.NewString(m.ToolCallID))
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]jinja.Value, len(m.ToolCalls))
		for i, tc := range m.ToolCalls {
			c, err := toolCallValue(tc)
			if err != nil {
				return jinja.Undefined(), fmt.Errorf("tool_calls[%d]: %w", i, err)
			}
			calls[i] = c
		}
		d.Set("tool_calls", jinja.NewList(calls))
	}
	return v, nil
}

// toolCallValue builds {"id", "type", "function": {"name", "arguments"}},
// the OpenAI/HF layout that chat templates index into.
func toolCallValue(tc ToolCall) (jinja.Value, error) {
	fn := jinja.NewDict()
	fn.AsDict().Set("name", jinja.NewString(tc.Function.Name))
	if len(bytes.TrimSpace(tc.Function.Arguments)) > 0 {
		args, err := decodeJSONValue(tc.Function.Arguments)
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("function %q arguments: %w", tc.Function.Name, err)
		}
		fn.AsDict().Set("arguments", args)
	}
	v := jinja.NewDict()
	if tc.ID != "" {
		v.AsDict().Set("id", jinja.NewString(tc.ID))
	}
	if tc.Type != "" {
		v.AsDict().Set("type", jinja.NewString(tc.Type))
	}
	v.AsDict().Set("function", fn)
	return v, nil
}
