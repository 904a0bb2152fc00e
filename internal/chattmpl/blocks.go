package chattmpl

import (
	"fmt"
	"slices"
	"strings"
)

// blockEnds maps each block statement to the statement that closes it.
var blockEnds = map[string]string{
	"if": "endif", "for": "endfor", "macro": "endmacro", "call": "endcall",
	"filter": "endfilter", "generation": "endgeneration",
	"set": "endset", // only the block form {% set x %}...{% endset %}
}

// middles are statements valid only directly inside the named blocks.
var middles = map[string][]string{
	"elif": {"if"}, "else": {"if", "for"},
	"break": {"for"}, "continue": {"for"},
}

type openBlock struct {
	kw   string
	line int
}

// checkBlocks verifies that block tags nest properly and reports the first
// problem with its line number. The engine finds the same mistakes but says
// only "unclosed if block" or "unknown statement \"endfor\"" without saying
// where, which makes a broken template in a model folder hard to fix.
func checkBlocks(toks []token) error {
	var stack []openBlock
	for _, t := range toks {
		if t.kind != tokBlock {
			continue
		}
		var err error
		if stack, err = stepBlocks(stack, t.body, t.line); err != nil {
			return err
		}
	}
	if len(stack) > 0 {
		b := stack[len(stack)-1]
		return fmt.Errorf("line %d: {%% %s %%} is never closed with {%% %s %%}", b.line, b.kw, blockEnds[b.kw])
	}
	return nil
}

// stepBlocks applies one statement tag to the stack of open blocks.
func stepBlocks(stack []openBlock, body string, line int) ([]openBlock, error) {
	kw, opens, closes := blockKind(body)
	if opens {
		return append(stack, openBlock{kw: kw, line: line}), nil
	}
	if parents, ok := middles[kw]; ok {
		if inBlock(stack, kw, parents) {
			return stack, nil
		}
		return nil, fmt.Errorf("line %d: {%% %s %%} outside of {%% %s %%}", line, kw, strings.Join(parents, " %} or {% "))
	}
	if closes {
		if len(stack) == 0 {
			return nil, fmt.Errorf("line %d: {%% %s %%} without an opening block", line, kw)
		}
		top := stack[len(stack)-1]
		if blockEnds[top.kw] != kw {
			return nil, fmt.Errorf("line %d: {%% %s %%} found, but {%% %s %%} from line %d is still open", line, kw, top.kw, top.line)
		}
		return stack[:len(stack)-1], nil
	}
	return stack, nil
}

// inBlock reports whether a middle statement is allowed here: elif/else
// belong to the innermost block, break/continue to any enclosing loop.
func inBlock(stack []openBlock, kw string, parents []string) bool {
	if kw == "elif" || kw == "else" {
		return len(stack) > 0 && slices.Contains(parents, stack[len(stack)-1].kw)
	}
	for _, b := range stack {
		if slices.Contains(parents, b.kw) {
			return true
		}
	}
	return false
}

func isEndKeyword(kw string) bool {
	for _, e := range blockEnds {
		if e == kw {
			return true
		}
	}
	return false
}

// blockKind classifies a block tag's body: its keyword, whether it opens
// a block ({% set x = ... %} does not; {% set x %} does) and whether it
// closes one.
func blockKind(body string) (kw string, opens, closes bool) {
	body = strings.TrimFunc(body, pyIsSpace)
	kw = body
	if i := strings.IndexFunc(body, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }); i >= 0 {
		kw = body[:i]
	}
	if _, ok := blockEnds[kw]; ok {
		return kw, !(kw == "set" && strings.Contains(body, "=")), false
	}
	return kw, false, isEndKeyword(kw)
}
