//go:build !linux

package report

import "io/fs"

func procFS() fs.FS { return nil }

func uname() (machine, release string, ok bool) { return "", "", false }
