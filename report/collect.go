package report

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Collect reads what the machine can say about itself: architecture and
// kernel version (uname), CPU model (/proc/cpuinfo), uptime (/proc/uptime)
// and boot time (btime in /proc/stat). A piece it cannot read, or that
// fails the report's own bounds, is left unknown (empty or zero) rather
// than guessed; on systems other than Linux all of them are unknown.
//
// Collect leaves MachineID, PatchVersion, PatchState, LastCheck and
// ClientVersion to the caller. It returns an error only when ctx is done.
func Collect(ctx context.Context) (Report, error) {
	return collector{proc: procFS(), uname: uname}.collect(ctx)
}

// collector holds the system's sources so tests can replace them with
// hostile ones.
type collector struct {
	proc  fs.FS // the /proc tree; nil when there is none
	uname func() (machine, release string, ok bool)
}

// Bounds on what Collect reads from /proc: large machines have megabytes
// of cpuinfo and very long interrupt lines in /proc/stat.
const (
	maxProcFile = 4 << 20
	maxProcLine = 4 << 10
)

func (c collector) collect(ctx context.Context) (Report, error) {
	var r Report
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	if machine, release, ok := c.uname(); ok {
		r.Architecture = validOrUnknown(machine)
		r.KernelVersion = validOrUnknown(release)
	}
	if c.proc == nil {
		return r, nil
	}
	steps := []func(){
		func() { r.CPUModel = validOrUnknown(cpuModel(c.proc)) },
		func() { r.Uptime = uptime(c.proc) },
		func() { r.BootTime = bootTime(c.proc) },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		step()
	}
	return r, nil
}

func validOrUnknown(s string) string {
	if checkString(s) != nil {
		return ""
	}
	return s
}

// eachLine calls fn with every line of the file (without the newline) until
// fn returns false. Lines longer than maxProcLine are skipped whole, and
// reading stops after maxProcFile bytes.
func eachLine(fsys fs.FS, name string, fn func(line []byte) bool) {
	f, err := fsys.Open(name)
	if err != nil {
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, maxProcFile), maxProcLine)
	skipping := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			skipping = true
			continue
		}
		if !skipping && len(line) > 0 && !fn(bytes.TrimSuffix(line, []byte("\n"))) {
			return
		}
		skipping = false
		if err != nil {
			return
		}
	}
}

// cpuModel returns the first "model name" of cpuinfo. Architectures that
// have no such line (arm64 has none) get "".
func cpuModel(fsys fs.FS) string {
	var model string
	eachLine(fsys, "cpuinfo", func(line []byte) bool {
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(bytes.TrimSpace(key)) != "model name" {
			return true
		}
		model = string(bytes.TrimSpace(value))
		return false
	})
	return model
}

// uptime returns the first field of /proc/uptime, or 0 when it is missing,
// out of range, or not in the kernel's "seconds.fraction" decimal form.
func uptime(fsys fs.FS) time.Duration {
	var d time.Duration
	eachLine(fsys, "uptime", func(line []byte) bool {
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			return false
		}
		d = parseSeconds(string(fields[0]))
		return false
	})
	return d
}

// parseSeconds parses "123" or "123.45" (at most nine fraction digits),
// refusing the signs, exponents, hex and special values that
// strconv.ParseFloat would accept.
func parseSeconds(s string) time.Duration {
	whole, frac, hasFrac := strings.Cut(s, ".")
	secs, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || secs > uint64(maxUptime/time.Second) {
		return 0
	}
	d := time.Duration(secs) * time.Second
	if hasFrac {
		if frac == "" || len(frac) > 9 {
			return 0
		}
		ns, err := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0
		}
		d += time.Duration(ns)
	}
	return d
}

// bootTime returns btime of /proc/stat, or the zero time when it is
// missing, malformed or before 2000 (a machine whose clock was wrong at
// boot: its boot time is unknown, not 1970).
func bootTime(fsys fs.FS) time.Time {
	var t time.Time
	eachLine(fsys, "stat", func(line []byte) bool {
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			return true
		}
		secs, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil || secs < minTime.Unix() || secs > maxUnixSeconds {
			return false
		}
		t = time.Unix(secs, 0).UTC()
		return false
	})
	return t
}

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnixSeconds = 253402300799
