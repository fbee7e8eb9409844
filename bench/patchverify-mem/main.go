// Command patchverify-mem is the helper of bench/patchverify-mem.sh.
//
//	patchverify-mem gen SIZE      writes a deterministic SIZE-byte tar stream to stdout
//	patchverify-mem check SHA256  runs patchverify.VerifyChecksum over stdin
//
// The data is generated as a stream, so no large file is stored anywhere.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/lpsec/lpsec/patchverify"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: patchverify-mem gen SIZE | check SHA256")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "gen":
		size, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err != nil || size < 3*512 {
			fmt.Fprintln(os.Stderr, "gen: SIZE must be at least 1536 bytes")
			os.Exit(2)
		}
		if err := gen(os.Stdout, size); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	case "check":
		start := time.Now()
		n, err := patchverify.VerifyChecksum(context.Background(), bufio.NewReaderSize(os.Stdin, 64<<10), os.Args[2],
			patchverify.WithMaxPatchSize(4<<30))
		if err != nil {
			fmt.Fprintln(os.Stderr, "check:", err)
			os.Exit(1)
		}
		d := time.Since(start)
		fmt.Printf("checksum ok: %d bytes in %v (%.0f MB/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6)
	default:
		fmt.Fprintln(os.Stderr, "usage: patchverify-mem gen SIZE | check SHA256")
		os.Exit(2)
	}
}

// gen writes one tar entry of pseudo-random bytes sized so that the whole
// archive is exactly size bytes (rounded down to tar's 512-byte blocks).
func gen(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	body := (size/512 - 3) * 512 // header block and two end blocks
	if err := tw.WriteHeader(&tar.Header{Name: "payload.bin", Size: body, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	src := rand.NewChaCha8([32]byte{'l', 'p', 's', 'e', 'c'})
	if _, err := io.CopyN(tw, src, body); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
