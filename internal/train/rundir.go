package train

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// WorkersDir is the sub-folder where a placed run keeps its run file and
// worker logs (package placement writes it).
const WorkersDir = "workers"

// Claim says which run folder a run wants and on what terms. The folder
// rules, the same for every trainer:
//
//   - a fresh run (neither Resume nor Overwrite) needs an empty or new run
//     folder (a lone workers/ folder of a placed run that never started
//     counts as empty) and, when the checkpoints live elsewhere, an empty
//     checkpoint folder;
//   - Resume accepts the folder as it is, unless it holds a finished
//     model but no checkpoint to resume from (nothing to resume; starting
//     again would replace that model);
//   - Overwrite first removes what an earlier run wrote there (the
//     names a run writes: model and tokenizer files, logs, metrics,
//     plots, tensorboard/, checkpoints/, critic/, workers/; in the
//     checkpoint folder its global_step* folders, _actor/, _critic/ and
//     latest) and leaves anything else where it is, reported in Notes;
//   - one run at a time: the claim holds LockFile until Release.
type Claim struct {
	Dir string // the run folder
	// Checkpoints is the checkpoint folder ("" or inside Dir: nothing
	// more to check).
	Checkpoints string
	// ResumeFrom is where a resumable checkpoint would be (LatestCheckpoint
	// of it); "" means Checkpoints.
	ResumeFrom string
	Resume     bool // --ckpt.load_enable
	Overwrite  bool // --ckpt.overwrite
}

// RunDir is a claimed run folder: checked against the rules of Claim and
// locked for this process until Release.
type RunDir struct {
	Path string
	// Notes are what the claim did that the run's log should say (a stale
	// lock taken over, what an overwrite removed or left).
	Notes []string
	lock  *runLock
}

// ClaimRunDir checks c's folders, applies Overwrite, creates the run
// folder and locks it.
func ClaimRunDir(c Claim) (*RunDir, error) {
	if c.Dir == "" {
		return nil, errors.New("train: no run folder")
	}
	if c.Resume && c.Overwrite {
		return nil, errors.New("train: --ckpt.load_enable (resume) and --ckpt.overwrite (start again) exclude each other")
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: run folder: %w", err)
	}
	lock, stale, err := acquireLock(filepath.Join(c.Dir, LockFile))
	if err != nil {
		return nil, fmt.Errorf("train: run folder %s is in use: %w", c.Dir, err)
	}
	d := &RunDir{Path: c.Dir, lock: lock}
	if stale != nil {
		d.Notes = append(d.Notes, fmt.Sprintf("took over the stale lock of %s, which no longer runs", stale))
	}
	if err := d.check(c); err != nil {
		lock.release()
		return nil, err
	}
	return d, nil
}

// Release unlocks the folder (removing LockFile). It is safe to call
// again and on nil.
func (d *RunDir) Release() error {
	if d == nil {
		return nil
	}
	return d.lock.release()
}

// check applies the folder rules.
func (d *RunDir) check(c Claim) error {
	switch {
	case c.Overwrite:
		return d.clear(c.Dir, c.Checkpoints)
	case c.Resume:
		return d.checkResume(c)
	}
	used, err := runEntries(c.Dir)
	if err != nil {
		return err
	}
	if len(used) > 0 {
		return fmt.Errorf("train: run folder %s is not empty (%s): resume it with --ckpt.load_enable, "+
			"start again with --ckpt.overwrite, or choose another --ckpt.output_dir", c.Dir, list(used))
	}
	if c.Checkpoints == "" || within(c.Dir, c.Checkpoints) {
		return nil // an empty run folder holds no checkpoints
	}
	if used, err = entries(c.Checkpoints); err != nil {
		return err
	}
	if len(used) > 0 {
		return fmt.Errorf("train: checkpoint folder %s is not empty (%s): resume with --ckpt.load_enable, "+
			"start again with --ckpt.overwrite, or choose another --ckpt.path", c.Checkpoints, list(used))
	}
	return nil
}

// checkResume refuses a finished run that has no checkpoint to resume.
func (d *RunDir) checkResume(c Claim) error {
	from := c.ResumeFrom
	if from == "" {
		from = c.Checkpoints
	}
	if from != "" {
		if latest, err := LatestCheckpoint(from); err != nil || latest != "" {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "config.json")); err == nil {
		return fmt.Errorf("train: --ckpt.load_enable: %s holds a finished model but %s has no checkpoint to resume from: "+
			"start again with --ckpt.overwrite (instead of --ckpt.load_enable) or choose another --ckpt.output_dir", c.Dir, from)
	}
	return nil
}

// clear removes an earlier run's outputs from dir and from the checkpoint
// folder ckpt ("" = none; it may be inside dir).
func (d *RunDir) clear(dir, ckpt string) error {
	var removed, kept []string
	sweep := func(folder string, ours func(fs.DirEntry) bool) error {
		ents, err := entries(folder)
		if err != nil {
			return err
		}
		for _, name := range ents {
			path := filepath.Join(folder, name)
			if name == LockFile || ckpt != "" && sameDir(path, ckpt) {
				continue
			}
			e, err := os.Lstat(path)
			if err != nil {
				return fmt.Errorf("train: overwrite: %w", err)
			}
			if !ours(fs.FileInfoToDirEntry(e)) {
				kept = append(kept, path)
				continue
			}
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("train: overwrite: %w", err)
			}
			removed = append(removed, path)
		}
		return nil
	}
	if ckpt != "" {
		if err := sweep(ckpt, checkpointEntry); err != nil {
			return err
		}
		if within(dir, ckpt) {
			_ = os.Remove(ckpt) // when empty now
		}
	}
	if err := sweep(dir, runOutput); err != nil {
		return err
	}
	if len(removed) > 0 {
		d.Notes = append(d.Notes, "--ckpt.overwrite removed the earlier run's "+list(removed))
	}
	if len(kept) > 0 {
		d.Notes = append(d.Notes, "--ckpt.overwrite left what no run writes: "+list(kept))
	}
	return nil
}

// runOutputNames are the files and folders a run (or its final model)
// writes into its run folder.
var runOutputNames = []string{
	"train.log", MetricsFile, MetricsFile + ".tmp", "report.html", "samples.txt",
	"config.json", "model.safetensors", "model.safetensors.index.json",
	"tensorboard", "checkpoints", "critic", WorkersDir,
	lora.ConfigFile, lora.WeightsFile, // a LoRA run's final model (PEFT's adapter folder)
}

// runOutput reports whether e is something a run writes into its folder.
func runOutput(e fs.DirEntry) bool {
	name := e.Name()
	switch {
	case name == LockFile:
		return false
	case slices.Contains(runOutputNames, name), slices.Contains(tokenizer.FolderFiles, name),
		slices.Contains(tokenizer.HFFileNames, name):
		return true
	case !e.IsDir() && (strings.HasSuffix(name, ".png") ||
		strings.HasPrefix(name, "model-") && strings.HasSuffix(name, ".safetensors")):
		return true
	}
	return isTemp(name)
}

// checkpointEntry reports whether e is something SaveCheckpoint (or the
// PPO roles' checkpoints) writes into a checkpoint folder.
func checkpointEntry(e fs.DirEntry) bool {
	name := e.Name()
	if _, ok := parseTag(name); ok && e.IsDir() {
		return true
	}
	return name == LatestFile || name == "_actor" || name == "_critic" || isTemp(name)
}

// isTemp reports a leftover of an interrupted atomic write (".name.tmp-…").
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// runEntries lists what makes dir a used run folder: every entry but the
// lock, and but a lone workers/ folder (written by a placed run's launcher
// before its trainer opens the folder).
func runEntries(dir string) ([]string, error) {
	ents, err := entries(dir)
	if err != nil {
		return nil, err
	}
	ents = slices.DeleteFunc(ents, func(n string) bool { return n == LockFile })
	if len(ents) == 1 && ents[0] == WorkersDir {
		return nil, nil
	}
	return ents, nil
}

// entries lists dir's names (none when it does not exist).
func entries(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// sameDir reports whether a and b name the same path.
func sameDir(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && x == y
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	a, err1 := filepath.Abs(dir)
	b, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(a, b)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// list names at most five entries.
func list(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}
