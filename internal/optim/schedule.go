package optim

import (
	"fmt"
	"math"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

const (
	Constant ScheduleKind = "constant"
	// CosineWithMinLR warms up linearly, then decays along a half cosine to
	// MinLRRatio·peak (OpenRLHF's default "cosine_with_min_lr").
	CosineWithMinLR ScheduleKind = "cosine_with_min_lr"
)

// String implements flag.Value.
func (k ScheduleKind) String() string { return string(k) }

// Set implements flag.Value.
func (k *ScheduleKind) Set(s string) error {
	switch ScheduleKind(s) {
	case Constant, CosineWithMinLR:
		*k = ScheduleKind(s)
		return nil
	case "cosine":
		*k = CosineWithMinLR
		return nil
	}
	return fmt.Errorf("unknown lr schedule %q (want constant or cosine_with_min_lr)", s)
}

// Schedule maps an optimizer step to a learning rate.
type Schedule struct {
	Kind        ScheduleKind
	PeakLR      float64
	WarmupSteps int     // linear warm-up from 0 (constant: also warms up when > 0)
	TotalSteps  int     // steps in the whole run (cosine ends here)
	MinLRRatio  float64 // floor as a fraction of PeakLR; OpenRLHF default 0.1
}

// Validate checks the schedule.
func (s Schedule) Validate() error {
	switch {
	case !(s.PeakLR >= 0) || math.IsInf(s.PeakLR, 0):
		return fmt.Errorf("optim: schedule: peak learning rate must be a finite number ≥ 0, got %g", s.PeakLR)
	case s.WarmupSteps < 0:
		return fmt.Errorf("optim: schedule: warm-up steps must be ≥ 0, got %d", s.WarmupSteps)
	case !(s.MinLRRatio >= 0 && s.MinLRRatio <= 1):
		return fmt.Errorf("optim: schedule: min LR ratio must be in [0, 1], got %g", s.MinLRRatio)
	}
	if s.Kind == CosineWithMinLR && s.TotalSteps <= 0 {
		return fmt.Errorf("optim: cosine schedule needs TotalSteps > 0")
	}
	return nil
}

// LR returns the learning rate for 0-based optimizer step `step`, following
// transformers' get_cosine_with_min_lr_schedule_with_warmup:
//
//	warm-up:  lr = peak·(step/W)
//	decay:    p = (step−W)/(T−W), lr = peak·(r + (1−r)·½(1+cos πp))
func (s Schedule) LR(step int) float64 {
	if step < s.WarmupSteps {
		return s.PeakLR * float64(step) / float64(max(1, s.WarmupSteps))
	}
	if s.Kind != CosineWithMinLR {
		return s.PeakLR
	}
	p := float64(step-s.WarmupSteps) / float64(max(1, s.TotalSteps-s.WarmupSteps))
	p = math.Min(p, 1)
	return s.PeakLR * (s.MinLRRatio + (1-s.MinLRRatio)*0.5*(1+math.Cos(math.Pi*p)))
}
