package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder rewrites the list of token strings on the way back to text, as HF
// decoders' decode_chain does; the results are concatenated at the end.
type decoder interface {
	decodeChain(toks []string) []string
}

type decoderSeq []decoder

func (q decoderSeq) decodeChain(toks []string) []string {
	for _, d := range q {
		toks = d.decodeChain(toks)
	}
	return toks
}

// byteLevelDec joins the tokens and maps the byte-level runes back to bytes.
type byteLevelDec struct{}

func (byteLevelDec) decodeChain(toks []string) []string {
	var buf []byte
	for _, t := range toks {
		buf = byteLevelBytes(buf, t)
	}
	return []string{lossyUTF8(buf)}
}

// byteFallbackDec turns runs of "<0xNN>" tokens into the text they spell;
// an invalid run becomes one U+FFFD per byte, as in HF.
type byteFallbackDec struct{}

func (byteFallbackDec) decodeChain(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if s := string(pending); utf8.ValidString(s) {
			out = append(out, s)
		} else {
			for range pending {
				out = append(out, "\ufffd")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads "<0xNN>" (either case of hex digits, as Rust's
// from_str_radix accepts).
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(t[3])
	lo, ok2 := hexVal(t[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// fuseDec joins all tokens into one.
type fuseDec struct{}

func (fuseDec) decodeChain(toks []string) []string { return []string{strings.Join(toks, "")} }

// stripDec removes up to start leading and stop trailing copies of content
// from every token.
type stripDec struct {
	content     rune
	start, stop int
}

func (d stripDec) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		r := []rune(t)
		lo, hi := 0, len(r)
		for lo < d.start && lo < hi && r[lo] == d.content {
			lo++
		}
		for k := 0; k < d.stop && hi > lo && r[hi-1] == d.content; k++ {
			hi--
		}
		out[i] = string(r[lo:hi])
	}
	return out
}

// replaceDec applies a Replace to every token.
type replaceDec struct{ f normalizerFunc }

func (d replaceDec) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = d.f(t)
	}
	return out
}

// metaspaceDec turns "▁" back into spaces. Like HF, it drops every "▁" of
// the first token (not just a leading one) unless prepending is off.
type metaspaceDec struct {
	replacement string
	prepend     string
}

func (d metaspaceDec) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		with := " "
		if i == 0 && d.prepend != "never" {
			with = ""
		}
		out[i] = strings.ReplaceAll(t, d.replacement, with)
	}
	return out
}

// jsonDecoder is the union of the decoder objects we read.
type jsonDecoder struct {
	Type           string            `json:"type"`
	Decoders       []json.RawMessage `json:"decoders"`
	Pattern        *jsonPattern      `json:"pattern"`
	Content        *string           `json:"content"`
	Start          int               `json:"start"`
	Stop           int               `json:"stop"`
	Replacement    *string           `json:"replacement"`
	PrependScheme  string            `json:"prepend_scheme"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
}

// parseDecoder builds a decoder from JSON; a JSON null gives (nil, nil).
func parseDecoder(raw json.RawMessage, field string) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	var j jsonDecoder
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch j.Type {
	case "Sequence":
		if j.Decoders == nil {
			return nil, fmt.Errorf("%s.decoders: missing", field)
		}
		var seq decoderSeq
		for i, r := range j.Decoders {
			d, err := parseDecoder(r, fmt.Sprintf("%s.decoders[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if d != nil {
				seq = append(seq, d)
			}
		}
		return seq, nil
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		return parseStripDec(j, field)
	case "Replace":
		f, err := parseReplace(j.Pattern, j.Content, field)
		if err != nil {
			return nil, err
		}
		return replaceDec{f}, nil
	case "Metaspace":
		return parseMetaspaceDec(j, field)
	case "":
		return nil, fmt.Errorf("%s.type: missing", field)
	}
	return nil, fmt.Errorf("%s.type: unsupported decoder %q", field, j.Type)
}

func parseStripDec(j jsonDecoder, field string) (decoder, error) {
	if j.Content == nil || len([]rune(*j.Content)) != 1 {
		return nil, fmt.Errorf("%s.content: want one character", field)
	}
	if j.Start < 0 || j.Stop < 0 {
		return nil, fmt.Errorf("%s.start/stop: negative", field)
	}
	return stripDec{content: []rune(*j.Content)[0], start: j.Start, stop: j.Stop}, nil
}

func parseMetaspaceDec(j jsonDecoder, field string) (decoder, error) {
	d := metaspaceDec{replacement: "\u2581", prepend: "always"}
	if j.Replacement != nil {
		if len([]rune(*j.Replacement)) != 1 {
			return nil, fmt.Errorf("%s.replacement: want one character, got %q", field, *j.Replacement)
		}
		d.replacement = *j.Replacement
	}
	switch {
	case j.PrependScheme != "":
		d.prepend = j.PrependScheme
	case j.AddPrefixSpace != nil && !*j.AddPrefixSpace:
		d.prepend = "never"
	}
	return d, nil
}
