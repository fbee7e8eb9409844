package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the whole story in-process and checks that every step
// behaved as expected and that the demo cleaned up after itself.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out bytes.Buffer
	if err := run(context.Background(), &out, false, false); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "steps behaved as expected") || strings.Contains(out.String(), "FAIL") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "lpsec-demo-*"))
	if len(left) != 0 {
		t.Errorf("demo left %v behind", left)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal(err)
	}
}
