// Package data turns dataset files into the token samples the offline
// trainers learn from: SFT samples with prompt-masked labels, preference
// pairs for reward models and DPO, their collation into padded or packed
// batches, and the seeded sampler whose cursor a checkpoint saves.
//
// The pipeline is the one OpenRLHF runs in its sft_dataset.py and
// reward_dataset.py, made explicit and checkable:
//
//	file (JSONL, JSONL.gz, JSON array, Parquet)  → Record (field → JSON value)
//	Record + Encoder (tokenizer, chat template)  → Sample / Pair (ids + loss mask)
//	[]Sample                                      → Batch (padded or packed rows)
//
// Records that cannot be used (bad JSON, a missing key, a prompt longer than
// the token budget, ...) are skipped, counted by reason and reported with
// their file and line in a Report, so a user can find them; a dataset with
// no usable record at all is an error.
package data

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Position says where a record came from: a file and a 1-based line
// (JSONL), element (JSON array) or row (Parquet).
type Position struct {
	File string
	Line int
	// Unit names what Line counts: "" for lines, "row" or "element".
	Unit string
}

// String formats the position as "file:12" or "file:row 12".
func (p Position) String() string {
	if p.Unit != "" {
		return fmt.Sprintf("%s:%s %d", p.File, p.Unit, p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Report counts what a dataset stage kept and what it skipped, with the
// positions of the first few skipped records for each reason.
type Report struct {
	Name    string // the dataset, e.g. "train" or a file name
	Total   int    // records seen
	Used    int    // records turned into samples
	Skipped map[string][]Position
	// SkipCount counts skips per reason (Skipped keeps only the first few).
	SkipCount map[string]int
	// Truncated counts samples cut to the token budget (kept, not skipped).
	Truncated int
}

// maxExamples is how many positions a report keeps per skip reason.
const maxExamples = 5

// Skip records that the record at pos was dropped for reason.
func (r *Report) Skip(pos Position, reason string) {
	if r.Skipped == nil {
		r.Skipped, r.SkipCount = map[string][]Position{}, map[string]int{}
	}
	r.SkipCount[reason]++
	if len(r.Skipped[reason]) < maxExamples {
		r.Skipped[reason] = append(r.Skipped[reason], pos)
	}
}

// SkippedTotal is the number of skipped records.
func (r *Report) SkippedTotal() int {
	n := 0
	for _, c := range r.SkipCount {
		n += c
	}
	return n
}

// Merge adds o's counts to r.
func (r *Report) Merge(o *Report) {
	r.Total += o.Total
	r.Used += o.Used
	r.absorb(o)
}

// absorb adds o's skips and truncations to r (o counts records r already
// counted, e.g. the encoding stage after the reading stage).
func (r *Report) absorb(o *Report) {
	r.Truncated += o.Truncated
	for reason, ps := range o.Skipped {
		for _, p := range ps {
			r.Skip(p, reason)
		}
		r.SkipCount[reason] += o.SkipCount[reason] - len(ps)
	}
}

// String summarises the report on one line per skip reason, e.g.
//
//	train: 7473 records, 7470 used, 3 skipped, 12 truncated
//	  2 × prompt too long: a.jsonl:17, a.jsonl:45
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d records, %d used, %d skipped, %d truncated", r.Name, r.Total, r.Used, r.SkippedTotal(), r.Truncated)
	for _, reason := range slices.Sorted(maps.Keys(r.SkipCount)) {
		ps := make([]string, len(r.Skipped[reason]))
		for i, p := range r.Skipped[reason] {
			ps[i] = p.String()
		}
		more := ""
		if n := r.SkipCount[reason] - len(ps); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(&b, "\n  %d × %s: %s%s", r.SkipCount[reason], reason, strings.Join(ps, ", "), more)
	}
	return b.String()
}

// Err returns an error when nothing was usable, naming the reasons.
func (r *Report) Err() error {
	if r.Used > 0 {
		return nil
	}
	if r.Total == 0 {
		return fmt.Errorf("data: %s: no records", r.Name)
	}
	return fmt.Errorf("data: no usable record in %s", r.String())
}
