package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options carries the environment that decides where the HF cache is.
// Fields mirror huggingface_hub's variables; empty means unset.
type Options struct {
	HubCache     string // $HF_HUB_CACHE (or the older $HUGGINGFACE_HUB_CACHE)
	HFHome       string // $HF_HOME
	XDGCacheHome string // $XDG_CACHE_HOME
	Home         string // the user's home folder
}

// CacheDir returns the hub cache folder huggingface_hub would use:
// $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub. A leading "~/" is expanded with Home.
func (o Options) CacheDir() (string, error) {
	switch {
	case o.HubCache != "":
		return o.expand(o.HubCache), nil
	case o.HFHome != "":
		return filepath.Join(o.expand(o.HFHome), "hub"), nil
	case o.XDGCacheHome != "":
		return filepath.Join(o.expand(o.XDGCacheHome), "huggingface", "hub"), nil
	case o.Home != "":
		return filepath.Join(o.Home, ".cache", "huggingface", "hub"), nil
	}
	return "", errors.New("no Hugging Face cache folder: HF_HUB_CACHE, HF_HOME and the home folder are all unset")
}

func (o Options) expand(p string) string {
	if o.Home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		return filepath.Join(o.Home, p[1:])
	}
	return p
}

// ParseRepoID splits "org/name@revision" (org and revision optional) and
// checks the repo id against the Hub's naming rules, which also keeps it
// from escaping the cache folder. The revision defaults to "main".
func ParseRepoID(ref string) (repo, revision string, err error) {
	repo, revision, hasRev := strings.Cut(ref, "@")
	if !hasRev {
		revision = "main"
	}
	if err := checkRevision(revision); err != nil {
		return "", "", err
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return "", "", fmt.Errorf("repo id %q has more than one '/'", repo)
	}
	for _, p := range parts {
		if err := checkRepoPart(p); err != nil {
			return "", "", fmt.Errorf("repo id %q: %w", repo, err)
		}
	}
	return repo, revision, nil
}

// checkRepoPart applies the Hub's rules for an org or model name.
func checkRepoPart(p string) error {
	switch {
	case p == "" || len(p) > 96:
		return fmt.Errorf("name %q must have 1 to 96 characters", p)
	case strings.Contains(p, "--") || strings.Contains(p, ".."):
		return fmt.Errorf("name %q contains '--' or '..'", p)
	case strings.IndexAny(p[:1]+p[len(p)-1:], "-.") >= 0:
		return fmt.Errorf("name %q starts or ends with '-' or '.'", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("name %q has character %q (allowed: letters, digits, '-', '_', '.')", p, r)
		}
	}
	return nil
}

// checkRevision rejects revisions that could leave the refs folder.
func checkRevision(rev string) error {
	if rev == "" || strings.HasPrefix(rev, "/") || strings.ContainsAny(rev, `\`) {
		return fmt.Errorf("revision %q is not valid", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("revision %q is not valid", rev)
		}
	}
	return nil
}

// isCommit reports whether rev is a full commit hash.
func isCommit(rev string) bool {
	if len(rev) != 40 {
		return false
	}
	for _, r := range rev {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// resolveCache finds repo@rev in the hub cache. The cache layout is
// models--org--name/refs/<revision> holding a commit hash, and
// models--org--name/snapshots/<commit>/ holding the files (symlinks into
// blobs/).
func resolveCache(ref, repo, rev string, o Options) (Location, error) {
	cache, err := o.CacheDir()
	if err != nil {
		return Location{}, fmt.Errorf("hub: %s: %w; %s", ref, err, downloadHint(repo, rev))
	}
	repoDir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	commit, err := commitFor(repoDir, rev)
	if err != nil {
		return Location{}, notFound(ref, repo, rev, cache, err)
	}
	snap := filepath.Join(repoDir, "snapshots", commit)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() {
		return Location{}, notFound(ref, repo, rev, cache,
			fmt.Errorf("revision %s points to commit %s but %s is missing", rev, commit, snap))
	}
	if err := checkConfig(snap); err != nil {
		return Location{}, notFound(ref, repo, rev, cache, err)
	}
	return Location{Kind: HFFolder, Path: snap, Repo: repo, Revision: rev, Commit: commit}, nil
}

// commitFor maps a revision to a commit hash through refs/, or takes a
// full hash as is.
func commitFor(repoDir, rev string) (string, error) {
	if isCommit(rev) {
		return rev, nil
	}
	refFile := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
	b, err := os.ReadFile(refFile)
	if err != nil {
		if _, derr := os.Stat(repoDir); derr != nil {
			return "", fmt.Errorf("%s does not exist", repoDir)
		}
		return "", fmt.Errorf("no revision %q: %s does not exist", rev, refFile)
	}
	commit := strings.TrimSpace(string(b))
	if !isCommit(commit) {
		return "", fmt.Errorf("%s holds %q, not a commit hash", refFile, commit)
	}
	return commit, nil
}

// notFound builds the error for a model missing from the cache.
func notFound(ref, repo, rev, cache string, cause error) error {
	return fmt.Errorf("hub: model %q not found: looked for a local file or folder %q and in the Hugging Face cache %s (%w). "+
		"gorlhf never downloads models; %s", ref, ref, cache, cause, downloadHint(repo, rev))
}

func downloadHint(repo, rev string) string {
	cmd := "huggingface-cli download " + repo
	if rev != "main" {
		cmd += " --revision " + rev
	}
	return "fetch it first with: " + cmd
}
