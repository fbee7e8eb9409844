package report

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func fakeUname(machine, release string) func() (string, string, bool) {
	return func() (string, string, bool) { return machine, release, true }
}

func procFiles(cpuinfo, uptime, stat string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range map[string]string{"cpuinfo": cpuinfo, "uptime": uptime, "stat": stat} {
		if data != "<missing>" {
			m[name] = &fstest.MapFile{Data: []byte(data)}
		}
	}
	return m
}

const (
	goodCPUInfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
	goodUptime  = "5003.23 9838.62\n"
	goodStat    = "cpu  1 2 3 4\nintr 1 2 3\nctxt 99\nbtime 1795381626\nprocesses 10\n"
)

func TestCollectFromFakeProc(t *testing.T) {
	c := collector{proc: procFiles(goodCPUInfo, goodUptime, goodStat), uname: fakeUname("x86_64", "6.1.0-18-amd64")}
	r, err := c.collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Architecture != "x86_64" || r.KernelVersion != "6.1.0-18-amd64" || r.CPUModel != "AMD EPYC 7763 64-Core Processor" ||
		r.Uptime != 5003230*time.Millisecond || !r.BootTime.Equal(time.Unix(1795381626, 0)) {
		t.Fatalf("collected %+v", r)
	}
}

// TestCollectHostileProc feeds Collect broken and hostile /proc contents: each
// piece it cannot trust must come back unknown, never invented or truncated.
func TestCollectHostileProc(t *testing.T) {
	longIntr := "intr " + strings.Repeat("123456789 ", 100000) + "\n" // ~1 MB line, as on big machines
	for _, tc := range []struct {
		name                 string
		proc                 fstest.MapFS
		uname                func() (string, string, bool)
		wantCPU              string
		wantUptime           time.Duration
		wantBoot             int64 // Unix seconds; 0 means unknown
		wantArch, wantKernel string
	}{
		{name: "no_proc_files", proc: procFiles("<missing>", "<missing>", "<missing>")},
		{name: "empty_files", proc: procFiles("", "", "")},
		{name: "uname_fails", proc: procFiles("", "", ""), uname: func() (string, string, bool) { return "", "", false }},
		{name: "uname_control_chars", proc: procFiles("", "", ""), uname: fakeUname("x86_64\x1b[2J", "6.1\nevent=x")},
		{name: "uname_overlong", proc: procFiles("", "", ""), uname: fakeUname(strings.Repeat("a", MaxFieldLen+1), "6.1"), wantKernel: "6.1"},
		{name: "arm64_cpuinfo_without_model_name", proc: procFiles("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n", goodUptime, goodStat),
			wantUptime: 5003230 * time.Millisecond, wantBoot: 1795381626},
		{name: "model_name_with_escape_sequence", proc: procFiles("model name\t: Evil\x1b[31m CPU\n", "", "")},
		{name: "model_name_overlong", proc: procFiles("model name\t: "+strings.Repeat("Z", MaxFieldLen+1)+"\n", "", "")},
		{name: "model_name_line_longer_than_line_bound_is_skipped", proc: procFiles("model name\t: "+strings.Repeat("Z", 3*maxProcLine)+"\nmodel name\t: Real\n", "", ""), wantCPU: "Real"},
		{name: "model_name_invalid_utf8", proc: procFiles("model name\t: \xff\xfe\n", "", "")},
		{name: "model_name_after_read_bound", proc: procFiles(strings.Repeat("flags\t: x\n", maxProcFile/10+1)+"model name\t: Late\n", "", "")},
		{name: "uptime_not_a_number", proc: procFiles("", "abc 1\n", "")},
		{name: "uptime_nan", proc: procFiles("", "NaN 1\n", "")},
		{name: "uptime_infinite", proc: procFiles("", "+Inf 1\n", "")},
		{name: "uptime_negative", proc: procFiles("", "-5.0 1\n", "")},
		{name: "uptime_absurd", proc: procFiles("", "1e300 1\n", "")},
		{name: "uptime_hex_float", proc: procFiles("", "0x1p4 1\n", "")},
		{name: "uptime_exponent", proc: procFiles("", "1e3 1\n", "")},
		{name: "uptime_plus_sign", proc: procFiles("", "+5.00 1\n", "")},
		{name: "uptime_fraction_plus_sign", proc: procFiles("", "5.+1 1\n", "")},
		{name: "uptime_trailing_dot", proc: procFiles("", "5. 1\n", "")},
		{name: "uptime_too_many_fraction_digits", proc: procFiles("", "5.0000000001 1\n", "")},
		{name: "uptime_whole_seconds", proc: procFiles("", "5\n", ""), wantUptime: 5 * time.Second},
		{name: "btime_missing", proc: procFiles("", "", "cpu 1 2\nctxt 3\n")},
		{name: "btime_1970_clock_unset_at_boot", proc: procFiles("", "", "btime 12345\n")},
		{name: "btime_negative", proc: procFiles("", "", "btime -1795381626\n")},
		{name: "btime_garbage", proc: procFiles("", "", "btime 17953x1626\n")},
		{name: "btime_overflow", proc: procFiles("", "", "btime 99999999999999999999999\n")},
		{name: "btime_after_year_9999", proc: procFiles("", "", "btime 253402300800\n")},
		{name: "btime_after_megabyte_intr_line", proc: procFiles("", "", "cpu 1\n"+longIntr+"btime 1795381626\n"), wantBoot: 1795381626},
		{name: "btime_no_trailing_newline", proc: procFiles("", "", "btime 1795381626"), wantBoot: 1795381626},
		{name: "btime_prefix_lookalike", proc: procFiles("", "", "btimex 1795381626\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			un := tc.uname
			if un == nil {
				un = fakeUname("", "")
			}
			r, err := collector{proc: tc.proc, uname: un}.collect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var wantBoot time.Time
			if tc.wantBoot != 0 {
				wantBoot = time.Unix(tc.wantBoot, 0)
			}
			if r.CPUModel != tc.wantCPU || r.Uptime != tc.wantUptime || !r.BootTime.Equal(wantBoot) ||
				r.Architecture != tc.wantArch || r.KernelVersion != tc.wantKernel {
				t.Fatalf("collected %+v", r)
			}
			// Whatever Collect returns must be sendable once the caller adds
			// the machine ID.
			r.MachineID, _ = ParseHashedID(testHashedID)
			if err := r.validateShape(); err != nil {
				t.Fatalf("collected report fails validation: %v", err)
			}
		})
	}
}

func TestCollectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCollectThisMachine checks Collect against this machine's own /proc.
func TestCollectThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipped: Collect reads nothing outside Linux")
	}
	r, err := Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Architecture == "" || r.KernelVersion == "" {
		t.Errorf("uname pieces unknown: %+v", r)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil && strings.TrimSpace(string(b)) != r.KernelVersion {
		t.Errorf("KernelVersion = %q, /proc/sys/kernel/osrelease = %q", r.KernelVersion, b)
	}
	if _, err := os.Stat("/proc/uptime"); err == nil && r.Uptime <= 0 {
		t.Errorf("Uptime unknown although /proc/uptime exists")
	}
	if _, err := os.Stat("/proc/stat"); err == nil {
		if r.BootTime.IsZero() || r.BootTime.After(time.Now()) {
			t.Errorf("BootTime = %v", r.BootTime)
		}
		// btime and uptime come from different clocks; they agree to within
		// a few seconds unless the wall clock was stepped since boot.
		if skew := time.Since(r.BootTime) - r.Uptime; skew < -time.Minute || skew > time.Minute {
			t.Logf("boot time and uptime disagree by %v (clock stepped since boot?)", skew)
		}
	}
	r.MachineID, _ = ParseHashedID(testHashedID)
	if err := r.Validate(); err != nil {
		t.Fatalf("collected report fails validation: %v", err)
	}
}
