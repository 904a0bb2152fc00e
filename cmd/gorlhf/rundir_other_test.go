//go:build !linux

package main

import "errors"

// helperFileSizeLimit: only Linux tests cap a helper's file sizes.
func helperFileSizeLimit(s string) error {
	if s != "" {
		return errors.New("no file size limit on this platform")
	}
	return nil
}
