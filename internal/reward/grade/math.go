package grade

import (
	"math/big"
	"regexp"
	"strings"
	"unicode"
)

// AnswerForm says how ExtractAnswer found a final answer. The format
// grader rewards the explicit forms (everything but FormLastNumber).
type AnswerForm int

const (
	// FormNone: no answer at all (no number anywhere).
	FormNone AnswerForm = iota
	// FormBoxed: the last \boxed{…} (or \fbox{…}), nested braces allowed.
	FormBoxed
	// FormHashes: GSM8K's final line "#### N" (the last one).
	FormHashes
	// FormPhrase: "the answer is N" or "answer: N" (the last one).
	FormPhrase
	// FormLastNumber: no explicit answer; the last number in the text.
	FormLastNumber
)

// String names the form for logs.
func (f AnswerForm) String() string {
	switch f {
	case FormBoxed:
		return "boxed"
	case FormHashes:
		return "hashes"
	case FormPhrase:
		return "phrase"
	case FormLastNumber:
		return "last-number"
	}
	return "none"
}

// Explicit reports whether the answer was stated in a recognised answer
// format rather than guessed from the last number.
func (f AnswerForm) Explicit() bool { return f == FormBoxed || f == FormHashes || f == FormPhrase }

// ExtractAnswer finds the final answer of a solution text. It tries, in
// this order, and takes the first that is present:
//
//  1. the last \boxed{…} or \fbox{…} (braces may nest: \boxed{\frac{1}{2}});
//  2. the last GSM8K answer line "#### N" (the rest of that line);
//  3. the last "the answer is N" / "answer: N" (case-insensitive; the rest
//     of that line);
//  4. the last number in the text (commas, decimals, fractions a/b and a
//     leading minus are part of a number; "16-3" is two numbers).
//
// Explicit forms come first because a solution's last number is often an
// intermediate result or a unit ("… in 2 hours"), while a model that was
// asked for "#### N" or \boxed{} states its answer there. The returned
// text is trimmed but not normalised (see NormalizeAnswer).
func ExtractAnswer(text string) (string, AnswerForm) {
	if s, ok := lastBoxed(text); ok {
		return strings.TrimSpace(s), FormBoxed
	}
	if i := strings.LastIndex(text, "####"); i >= 0 {
		return firstLine(text[i+4:]), FormHashes
	}
	if s, ok := lastPhrase(text); ok {
		return s, FormPhrase
	}
	if s, ok := lastNumber(text); ok {
		return s, FormLastNumber
	}
	return "", FormNone
}

// LabelAnswer returns the reference answer of a label: the text after the
// last "####" for a full GSM8K answer, the content of \boxed{} for a
// MATH-style solution, else the trimmed label itself.
func LabelAnswer(label string) string {
	if i := strings.LastIndex(label, "####"); i >= 0 {
		return firstLine(label[i+4:])
	}
	if s, ok := lastBoxed(label); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(label)
}

// MathCorrect grades a solution against a label: the answer ExtractAnswer
// finds must equal the label's answer (LabelAnswer) under AnswersEqual.
// It returns the verdict, the extracted answer and its form.
func MathCorrect(response, label string) (bool, string, AnswerForm) {
	got, form := ExtractAnswer(response)
	if form == FormNone {
		return false, "", form
	}
	return AnswersEqual(got, LabelAnswer(label)), got, form
}

// AnswersEqual compares two final answers. Both are normalised
// (NormalizeAnswer); when both are numbers (a unit word after the number
// is ignored: "18 dollars") they are compared exactly as rationals, so
// "18", "18.0", "18.00", "$18", "36/2" and "\frac{36}{2}" are equal;
// otherwise the normalised strings must be equal.
func AnswersEqual(a, b string) bool {
	na, nb := NormalizeAnswer(a), NormalizeAnswer(b)
	if na == "" || nb == "" {
		return false
	}
	ra, oka := numericValue(na)
	rb, okb := numericValue(nb)
	if oka && okb {
		return ra.Cmp(rb) == 0
	}
	return na == nb
}

// latexWrappers are commands whose argument is kept as plain text.
var latexWrappers = []string{`\text`, `\textbf`, `\mathrm`, `\mathbf`, `\mbox`, `\textrm`}

// latexDrop are pieces of LaTeX that never change a value.
var latexDrop = []string{`\left`, `\right`, `\!`, `\,`, `\;`, `\:`, `\ `, `^{\circ}`, `^\circ`, `\%`, `%`, `\$`, `$`,
	`\(`, `\)`, `\[`, `\]`, `\displaystyle`}

// groupedNumber is a number with thousands separators: 1,234 or -12,345.6.
var groupedNumber = regexp.MustCompile(`^-?\d{1,3}(,\d{3})+(\.\d+)?$`)

// NormalizeAnswer puts a final answer in a canonical text form: LaTeX text
// wrappers unwrapped (\text{5} → 5), spacing commands, \left/\right,
// degree signs, dollar and percent signs dropped, \dfrac/\tfrac/\frac{a}{b}
// written a/b (and \frac12 as 1/2), the Unicode minus made ASCII, spaces
// removed, thousands separators removed (only when the commas group
// digits by three), a trailing full stop dropped, and lower case.
func NormalizeAnswer(s string) string {
	s = strings.ReplaceAll(s, "−", "-")
	for _, w := range latexWrappers {
		s = unwrapCommand(s, w)
	}
	for _, d := range latexDrop {
		s = strings.ReplaceAll(s, d, "")
	}
	s = strings.NewReplacer(`\dfrac`, `\frac`, `\tfrac`, `\frac`).Replace(s)
	s = rewriteFracs(s)
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), "")
	s = strings.TrimRight(s, ".")
	if groupedNumber.MatchString(s) {
		s = strings.ReplaceAll(s, ",", "")
	}
	return strings.ToLower(s)
}

// numberRe matches a whole normalised number: sign, digits, optional
// decimals, optional /denominator; a parenthesised a/b from \frac too.
var numberRe = regexp.MustCompile(`^[+-]?(\d+(\.\d+)?|\.\d+)(/\d+(\.\d+)?)?$`)

// unitTail matches a number followed by a unit word: "18dollars" (spaces
// are gone after normalisation).
var unitTail = regexp.MustCompile(`^([+-]?\d+(\.\d+)?(/\d+)?)[a-z]+$`)

// numericValue parses a normalised answer as an exact rational.
func numericValue(s string) (*big.Rat, bool) {
	s = strings.TrimPrefix(strings.TrimSuffix(s, ")"), "(")
	if m := unitTail.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if !numberRe.MatchString(s) {
		return nil, false
	}
	num, den, isFrac := strings.Cut(s, "/")
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, false
	}
	if isFrac {
		d, ok := new(big.Rat).SetString(den)
		if !ok || d.Sign() == 0 {
			return nil, false
		}
		r.Quo(r, d)
	}
	return r, true
}

// unwrapCommand replaces every \cmd{X} by X (braces balanced).
func unwrapCommand(s, cmd string) string {
	for {
		i := strings.Index(s, cmd+"{")
		if i < 0 {
			return s
		}
		body, end, ok := braced(s, i+len(cmd))
		if !ok {
			return s
		}
		s = s[:i] + body + s[end:]
	}
}

// rewriteFracs turns \frac{a}{b} into a/b (parenthesised when a or b is
// not a plain number) and \fracAB (single characters) into A/B.
func rewriteFracs(s string) string {
	for {
		i := strings.Index(s, `\frac`)
		if i < 0 {
			return s
		}
		j := i + len(`\frac`)
		num, j, ok1 := fracArg(s, j)
		den, k, ok2 := fracArg(s, j)
		if !ok1 || !ok2 {
			return s
		}
		s = s[:i] + fracPart(num) + "/" + fracPart(den) + s[k:]
	}
}

// fracArg reads one argument of \frac at s[i:]: {…} or a single character.
func fracArg(s string, i int) (string, int, bool) {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) {
		return "", i, false
	}
	if s[i] == '{' {
		return braced(s, i)
	}
	return s[i : i+1], i + 1, true
}

func fracPart(p string) string {
	p = strings.TrimSpace(p)
	if numberRe.MatchString(p) {
		return p
	}
	return "(" + p + ")"
}

// braced returns the content of the balanced {…} starting at s[open] and
// the index just past its closing brace.
func braced(s string, open int) (string, int, bool) {
	if open >= len(s) || s[open] != '{' {
		return "", open, false
	}
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return s[open+1 : i], i + 1, true
			}
		}
	}
	return "", open, false
}

// lastBoxed returns the content of the last complete \boxed{…} or
// \fbox{…}; "\boxed 5" (no braces) gives the next word.
func lastBoxed(text string) (string, bool) {
	for end := len(text); end > 0; {
		i := max(strings.LastIndex(text[:end], `\boxed`), strings.LastIndex(text[:end], `\fbox`))
		if i < 0 {
			return "", false
		}
		j := i + len(`\boxed`)
		if strings.HasPrefix(text[i:], `\fbox`) {
			j = i + len(`\fbox`)
		}
		if j < len(text) && text[j] == ' ' {
			if w := strings.Fields(text[j:]); len(w) > 0 {
				return strings.TrimRight(w[0], "$.,"), true
			}
		}
		if body, _, ok := braced(text, j); ok {
			return body, true
		}
		end = i // unbalanced (cut off): try an earlier one
	}
	return "", false
}

// phraseRe finds "answer is" / "answer:" (with an optional "final").
var phraseRe = regexp.MustCompile(`(?i)answer\s*(?:is|:)\s*:?`)

// lastPhrase returns the line after the last "answer is"/"answer:".
func lastPhrase(text string) (string, bool) {
	locs := phraseRe.FindAllStringIndex(text, -1)
	for k := len(locs) - 1; k >= 0; k-- {
		if s := firstLine(text[locs[k][1]:]); s != "" {
			return s, true
		}
	}
	return "", false
}

// numberInText matches a number in running text: thousands-grouped,
// decimal or a/b fraction, with an optional minus.
var numberInText = regexp.MustCompile(`-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?`)

// numbersIn returns the numbers of text, dropping a '-' that is a binary
// minus ("16-3" is 16 and 3, "-3" alone is negative).
func numbersIn(text string) []string {
	text = strings.ReplaceAll(text, "−", "-")
	var out []string
	for _, loc := range numberInText.FindAllStringIndex(text, -1) {
		a := loc[0]
		if text[a] == '-' && a > 0 {
			if c := rune(text[a-1]); unicode.IsLetter(c) || unicode.IsDigit(c) || c == ')' {
				a++
			}
		}
		out = append(out, text[a:loc[1]])
	}
	return out
}

func lastNumber(text string) (string, bool) {
	ns := numbersIn(text)
	if len(ns) == 0 {
		return "", false
	}
	return ns[len(ns)-1], true
}

// firstLine returns the trimmed text up to the first newline. A span that
// is not a number by itself ("18 eggs.", "$18</s>") is reduced to its
// first number when the words around it are not part of a formula.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if numberRe.MatchString(NormalizeAnswer(s)) || strings.Contains(s, `\`) {
		return s
	}
	if ns := numbersIn(s); len(ns) > 0 {
		return ns[0]
	}
	return s
}
