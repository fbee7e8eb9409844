package report

import (
	"io/fs"
	"os"
	"syscall"
)

func procFS() fs.FS { return os.DirFS("/proc") }

func uname() (machine, release string, ok bool) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", "", false
	}
	return utsString(u.Machine[:]), utsString(u.Release[:]), true
}

// utsString converts a NUL-terminated utsname field, whose element type is
// int8 or uint8 depending on the architecture.
func utsString[T int8 | uint8](field []T) string {
	b := make([]byte, 0, len(field))
	for _, c := range field {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
