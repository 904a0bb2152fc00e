package transfer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Same-host shortcut. A publisher whose ShmDir exists keeps each snapshot
// as a file there, written under a temporary name and renamed into place,
// so a reader never sees a partial file. A client that sends its host id
// and finds the publisher's equal gets the file's path, size, version and
// checksum instead of the bytes, opens the file, and verifies it exactly
// as it would the stream. The publisher owns the files: it removes a
// snapshot's file when a newer one replaces it and all of them on Close
// (a reader that has the file open keeps reading the old bytes).

// shmPrefix starts every snapshot file name; the client refuses paths
// without it.
const shmPrefix = "gorlhf-weights-"

// shmFileName is the final name of a snapshot file. The publisher's id
// (its pid and its number in the process) keeps two publishers on one
// host apart; the version makes every file new, so a replaced snapshot
// never changes under an open reader.
func shmFileName(publisher, name string, version int64) string {
	return fmt.Sprintf("%s%s-%s-v%d.safetensors", shmPrefix, publisher, name, version)
}

// LocalHostID identifies this machine for the shortcut: the host name and
// the kernel's boot id. Two containers with their own host names never
// match, even on one machine (they may not share /dev/shm).
func LocalHostID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return host
	}
	return host + "/" + strings.TrimSpace(string(boot))
}

// errNoShortcut means the shortcut file cannot be used here: it is gone (a
// newer snapshot replaced it, or this process sees another /dev/shm) or it
// is not a snapshot file in this client's folder. The client falls back to
// the stream.
var errNoShortcut = errors.New("shortcut file not usable")

// openShm opens the shortcut file a response named, after checking that it
// lies directly in dir and has the snapshot prefix (else it is not opened
// at all), is a regular file and has the announced size.
func openShm(dir string, m Meta) (*os.File, error) {
	clean := filepath.Clean(m.Path)
	if filepath.Dir(clean) != filepath.Clean(dir) || !strings.HasPrefix(filepath.Base(clean), shmPrefix) {
		return nil, errNoShortcut
	}
	f, err := os.Open(clean)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoShortcut
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("shortcut path %q is not a regular file", m.Path)
	}
	if err == nil && st.Size() != m.Size {
		err = fmt.Errorf("%w: shortcut file %s has %d bytes, %d announced", ErrCorrupt, clean, st.Size(), m.Size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writeShm writes a snapshot file in dir atomically: encode into a
// temporary file through fill, then rename it to its final name.
func writeShm(dir, final string, fill func(io.Writer) error) (path string, err error) {
	f, err := os.CreateTemp(dir, "."+shmPrefix+"*.tmp") // mode 0600: this user only
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	path = filepath.Join(dir, final)
	if err = os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// RemoveSnapshots deletes the snapshot files a publisher with the given
// pid left in dir: a publisher killed before Close cannot remove its own,
// so whoever supervised it does. It returns how many it removed.
func RemoveSnapshots(dir string, pid int) (int, error) {
	paths, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%s%d-*.safetensors", shmPrefix, pid)))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range paths {
		if err := os.Remove(p); err == nil {
			n++
		}
	}
	return n, nil
}
