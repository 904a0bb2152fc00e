package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LockFile is the name of the lock a running trainer keeps in its run
// folder: JSON naming the owner's PID, host and start time.
const LockFile = "run.lock"

// lockOwner is what a lock file says.
type lockOwner struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

func (o lockOwner) String() string {
	return fmt.Sprintf("PID %d on host %s (since %s)", o.PID, o.Host, o.Started.Format(time.RFC3339))
}

// runLock is a held lock file.
type runLock struct {
	path string
	f    *os.File
	me   lockOwner
}

// errLockBusy says that another live run holds the lock.
type errLockBusy struct {
	path  string
	owner lockOwner
	me    lockOwner
	why   string
}

func (e *errLockBusy) Error() string {
	return fmt.Sprintf("%s is held by %s; this is PID %d on host %s%s", e.path, e.owner, e.me.PID, e.me.Host, e.why)
}

// acquireLock takes the lock file at path for this process. A lock held
// by a live run (flock where the file system has it, else a running PID
// on this host) is refused naming both processes; a lock its owner left
// behind on this host is taken over and returned as stale (nil when there
// was none). A leftover lock from another host is refused: whether that
// run still lives cannot be told from here.
func acquireLock(path string) (*runLock, *lockOwner, error) {
	host, _ := os.Hostname()
	me := lockOwner{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second)}
	for range 5 { // the owner may remove the file between our open and lock
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, err
		}
		held, flockWorks, err := tryFlock(f)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if !held {
			owner, _ := readOwner(f)
			f.Close()
			return nil, nil, &errLockBusy{path: path, owner: owner, me: me}
		}
		if !sameFile(f, path) {
			f.Close() // we locked a removed file: try the new one
			continue
		}
		prev, err := readOwner(f)
		var stale *lockOwner
		if err == nil {
			if why := stillOwned(prev, me, flockWorks); why != "" {
				f.Close()
				return nil, nil, &errLockBusy{path: path, owner: prev, me: me, why: why}
			}
			stale = &prev
		}
		if err := writeOwner(f, me); err != nil {
			f.Close()
			return nil, nil, err
		}
		return &runLock{path: path, f: f, me: me}, stale, nil
	}
	return nil, nil, fmt.Errorf("%s: kept changing while being locked", path)
}

// stillOwned says why a lock whose flock this process got still belongs
// to prev ("" when it is stale and may be taken over).
func stillOwned(prev, me lockOwner, flockWorks bool) string {
	switch {
	case prev.Host != me.Host:
		return "; a run on another host cannot be checked from here: if it is gone, delete the lock file"
	case prev.PID == me.PID:
		return "" // our own PID: a reused one (PID 1 in a container)
	case flockWorks:
		return "" // the kernel drops a flock when its owner dies
	case processAlive(prev.PID):
		return "; that process is still running"
	}
	return ""
}

// readOwner parses a lock file's content (an error when empty or bad).
func readOwner(f *os.File) (lockOwner, error) {
	var o lockOwner
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return o, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<12))
	if err != nil {
		return o, err
	}
	if len(b) == 0 {
		return o, errors.New("empty lock file")
	}
	return o, json.Unmarshal(b, &o)
}

// writeOwner replaces the lock file's content with o.
func writeOwner(f *os.File, o lockOwner) error {
	b, _ := json.Marshal(o) // plain values: cannot fail
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// release removes the lock file (when it is still ours) and unlocks it.
func (l *runLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var err error
	if sameFile(l.f, l.path) {
		err = os.Remove(l.path)
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
