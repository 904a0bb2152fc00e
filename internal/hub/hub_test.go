package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	commitMain = "0123456789abcdef0123456789abcdef01234567"
	commitV1   = "89abcdef0123456789abcdef0123456789abcdef"
	commitPR   = "fedcba9876543210fedcba9876543210fedcba98"
)

func mkfile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeCache builds a hub cache laid out as huggingface_hub writes it:
// refs/ files with commit hashes, snapshot files as relative symlinks into
// blobs/.
func fakeCache(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--org--name")
	mkfile(t, filepath.Join(repo, "blobs", "cfgblob"), `{"model_type":"llama"}`)
	for _, c := range []string{commitMain, commitV1, commitPR} {
		link := filepath.Join(repo, "snapshots", c, ConfigName)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", "cfgblob"), link); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(t, filepath.Join(repo, "refs", "main"), commitMain) // no newline, as huggingface_hub writes
	mkfile(t, filepath.Join(repo, "refs", "v1"), commitV1+"\n")
	mkfile(t, filepath.Join(repo, "refs", "refs", "pr", "1"), commitPR)

	// Broken states.
	mkfile(t, filepath.Join(repo, "refs", "gone"), "1111111111111111111111111111111111111111")
	mkfile(t, filepath.Join(repo, "refs", "junk"), "not a hash")
	partial := filepath.Join(cache, "models--org--partial")
	mkfile(t, filepath.Join(partial, "refs", "main"), commitMain)
	if err := os.MkdirAll(filepath.Join(partial, "snapshots", commitMain), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../blobs/missing", filepath.Join(partial, "snapshots", commitMain, ConfigName)); err != nil {
		t.Fatal(err)
	}
	noCfg := filepath.Join(cache, "models--gpt2")
	mkfile(t, filepath.Join(noCfg, "refs", "main"), commitMain)
	mkfile(t, filepath.Join(noCfg, "snapshots", commitMain, "tokenizer.json"), "{}")
	return cache
}

func TestResolve_HubCache(t *testing.T) {
	cache := fakeCache(t)
	o := Options{HubCache: cache}
	snap := func(c string) string { return filepath.Join(cache, "models--org--name", "snapshots", c) }
	tests := []struct {
		ref    string
		rev    string
		commit string
	}{
		{"org/name", "main", commitMain},
		{"org/name@main", "main", commitMain},
		{"org/name@v1", "v1", commitV1},
		{"org/name@refs/pr/1", "refs/pr/1", commitPR},
		{"org/name@" + commitV1, commitV1, commitV1},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			loc, err := Resolve(tc.ref, o)
			if err != nil {
				t.Fatal(err)
			}
			want := Location{Kind: HFFolder, Path: snap(tc.commit), Repo: "org/name", Revision: tc.rev, Commit: tc.commit}
			if loc != want {
				t.Fatalf("Resolve = %+v, want %+v", loc, want)
			}
			if b, err := os.ReadFile(loc.File(ConfigName)); err != nil || !strings.Contains(string(b), "llama") {
				t.Errorf("config.json through the snapshot link: %q, %v", b, err)
			}
		})
	}
}

func TestResolve_HubCacheErrors(t *testing.T) {
	cache := fakeCache(t)
	o := Options{HubCache: cache}
	tests := []struct {
		ref  string
		want []string
	}{
		{"org/missing", []string{"never downloads", "huggingface-cli download org/missing", cache, "models--org--missing does not exist"}},
		{"org/name@v9", []string{`no revision "v9"`, "huggingface-cli download org/name --revision v9"}},
		{"org/name@gone", []string{"1111111111111111111111111111111111111111", "is missing"}},
		{"org/name@junk", []string{"not a commit hash"}},
		{"org/name@" + strings.Repeat("a", 40), []string{"is missing"}},
		{"org/partial", []string{"broken link"}},
		{"gpt2", []string{"no config.json", "huggingface-cli download gpt2"}},
		{"a/b/c", []string{"neither an existing file or folder", "more than one '/'"}},
		{"org/na--me", []string{"'--'"}},
		{"org/-name", []string{"starts or ends"}},
		{"org/na me", []string{"character ' '"}},
		{"org/name@../../x", []string{"revision"}},
		{"org/name@", []string{"revision"}},
		{"./does-not-exist.bin", []string{"neither an existing file or folder"}},
		{"", []string{"empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := Resolve(tc.ref, o)
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	t.Run("no cache folder", func(t *testing.T) {
		_, err := Resolve("org/name", Options{})
		if err == nil || !strings.Contains(err.Error(), "no Hugging Face cache folder") {
			t.Fatalf("Resolve = %v", err)
		}
	})
}

func TestResolve_Local(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	mkfile(t, filepath.Join(model, ConfigName), "{}")
	mkfile(t, filepath.Join(dir, "stories.bin"), "x")
	mkfile(t, filepath.Join(dir, "empty", "README"), "")
	mkfile(t, filepath.Join(dir, "w.safetensors"), "")
	tests := []struct {
		ref     string
		want    Location
		wantErr string
	}{
		{ref: model, want: Location{Kind: HFFolder, Path: model}},
		{ref: model + "/", want: Location{Kind: HFFolder, Path: model}},
		{ref: filepath.Join(model, ConfigName), want: Location{Kind: HFFolder, Path: model}},
		{ref: filepath.Join(dir, "stories.bin"), want: Location{Kind: Llama2CFile, Path: filepath.Join(dir, "stories.bin")}},
		{ref: filepath.Join(dir, "empty"), wantErr: "no config.json"},
		{ref: filepath.Join(dir, "w.safetensors"), wantErr: "pass the model folder"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			loc, err := Resolve(tc.ref, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve = %+v, %v; want error with %q", loc, err, tc.wantErr)
				}
				return
			}
			if err != nil || loc != tc.want {
				t.Fatalf("Resolve = %+v, %v; want %+v", loc, err, tc.want)
			}
		})
	}
}

func TestResolve_LocalBeatsHub(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, filepath.Join(dir, "org", "name", ConfigName), "{}")
	t.Chdir(dir)
	loc, err := Resolve("org/name", Options{HubCache: fakeCache(t)})
	if err != nil || loc.Kind != HFFolder || loc.Path != filepath.Join("org", "name") || loc.Repo != "" {
		t.Fatalf("Resolve = %+v, %v; want the local folder", loc, err)
	}
}

func TestOptions_CacheDir(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"hub cache wins", Options{HubCache: "/c", HFHome: "/h", XDGCacheHome: "/x", Home: "/u"}, "/c"},
		{"hf home", Options{HFHome: "/h", XDGCacheHome: "/x", Home: "/u"}, "/h/hub"},
		{"xdg", Options{XDGCacheHome: "/x", Home: "/u"}, "/x/huggingface/hub"},
		{"home", Options{Home: "/u"}, "/u/.cache/huggingface/hub"},
		{"tilde", Options{HFHome: "~/hf", Home: "/u"}, "/u/hf/hub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.o.CacheDir()
			if err != nil || got != filepath.FromSlash(tc.want) {
				t.Fatalf("CacheDir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestKind_String(t *testing.T) {
	if HFFolder.String() != "HF folder" || Llama2CFile.String() != "llama2.c file" || Kind(9).String() != "Kind(9)" {
		t.Error("Kind.String mismatch")
	}
}

// TestResolve_AdapterFolder: a LoRA adapter folder (no config.json) is
// refused with the way to merge it.
func TestResolve_AdapterFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "--merge-lora "+dir) {
		t.Fatalf("adapter folder: %v", err)
	}
}
