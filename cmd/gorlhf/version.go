package main

import (
	"context"
	"fmt"
	"runtime"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func runVersion(ctx context.Context, args []string) error {
	fs := newFlagSet("version", "version")
	var ef engineFlags
	ef.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ef.quiet = true
	if err := ef.apply(); err != nil {
		return err
	}
	fmt.Printf("gorlhf %s (%s, %s/%s)\n%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, ef.describe())
	return nil
}
