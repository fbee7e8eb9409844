package patchverify

import (
	"bytes"
	"testing"

	"github.com/ulikunitz/xz"
)

// TestXZSize: the uncompressed size xzSize reads from the indexes (it sizes
// a .ko.xz module's buffer) is the real one, for what the xz program and
// github.com/ulikunitz/xz write, in one block, many, and two streams.
func TestXZSize(t *testing.T) {
	mod := noise(300 << 10)
	var lib bytes.Buffer
	w, err := xz.NewWriter(&lib)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(mod)
	w.Close()
	one := pipeProgram(t, "xz", "xz-utils", mod)
	for name, tc := range map[string]struct {
		data []byte
		want int64
	}{
		"xz_program":   {one, int64(len(mod))},
		"many_blocks":  {pipeProgram(t, "xz", "xz-utils", mod, "--block-size=65536"), int64(len(mod))},
		"two_streams":  {append(append([]byte(nil), one...), pipeProgram(t, "xz", "xz-utils", mod[:1000])...), int64(len(mod)) + 1000},
		"padded":       {append(append([]byte(nil), one...), 0, 0, 0, 0), int64(len(mod))},
		"ulikunitz_xz": {lib.Bytes(), int64(len(mod))},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := xzSize(tc.data, maxXZDict)
			if err != nil || got != tc.want {
				t.Fatalf("xzSize = %d, %v; want %d", got, err, tc.want)
			}
			if h := decompressedSizeHint(compXZ, tc.data); h != tc.want {
				t.Errorf("decompressedSizeHint = %d; want %d", h, tc.want)
			}
		})
	}
	if _, err := xzSize([]byte("not xz at all, long enough for a footer"), maxXZDict); err == nil {
		t.Error("xzSize accepted junk")
	}
}
