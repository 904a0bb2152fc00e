package data

import (
	"errors"
	"fmt"
)

// encodeAll turns records into samples with one, skipping (and reporting)
// the records it rejects with a skipError and counting the truncated
// ones. It fails on any other error, naming the record, and when no
// record is usable. Pairs, SFTSamples and UnpairedSamples share it.
func encodeAll[T any](name string, recs []Record, one func(Record) (T, bool, error)) ([]T, *Report, error) {
	rep := &Report{Name: name, Total: len(recs)}
	out := make([]T, 0, len(recs))
	for _, rec := range recs {
		s, truncated, err := one(rec)
		var skip skipError
		switch {
		case errors.As(err, &skip):
			rep.Skip(rec.Pos, skip.Error())
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("data: %s: %w", rec.Pos, err)
		}
		if truncated {
			rep.Truncated++
		}
		out = append(out, s)
	}
	rep.Used = len(out)
	if err := rep.Err(); err != nil {
		return nil, rep, err
	}
	return out, rep, nil
}

// withReadReport folds the encoding stage's report into the reading
// stage's rep (ReadPairs, ReadSFT, ReadUnpaired): one report covers both.
// When nothing was usable, the error names the read-stage skips too.
func withReadReport[T any](rep *Report, out []T, encRep *Report, err error) ([]T, *Report, error) {
	if encRep != nil {
		rep.Used = encRep.Used
		rep.absorb(encRep)
	}
	if err != nil {
		if encRep != nil && encRep.Used == 0 && rep.Err() != nil {
			err = rep.Err()
		}
		return nil, rep, err
	}
	return out, rep, nil
}
