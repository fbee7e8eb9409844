package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// steps prints one numbered line per step of the story with its outcome
// and counts the steps that did not behave as expected.
type steps struct {
	w      io.Writer
	n      int
	failed []string
	start  time.Time
}

func newSteps(w io.Writer) *steps { return &steps{w: w, start: time.Now()} }

const width = 70

func (s *steps) line(mark, title, detail string) {
	s.n++
	dots := width - len(title)
	if dots < 3 {
		dots = 3
	}
	fmt.Fprintf(s.w, "%2d. %s %s %s", s.n, title, strings.Repeat(".", dots), mark)
	if detail != "" {
		fmt.Fprintf(s.w, "  %s", detail)
	}
	fmt.Fprintln(s.w)
}

// ok runs a step that must succeed; fn returns a short detail to print.
func (s *steps) ok(title string, fn func() (string, error)) bool {
	detail, err := fn()
	if err != nil {
		s.line("FAIL", title, err.Error())
		s.failed = append(s.failed, title)
		return false
	}
	s.line("ok", title, detail)
	return true
}

// refused runs a step that must be refused with an error matching want
// (errors.Is) or, when want is nil, any error accepted by check.
func (s *steps) refused(title string, fn func() error, want error, check func(error) bool) bool {
	err := fn()
	switch {
	case err == nil:
		s.line("FAIL", title, "was accepted, but must be refused")
	case want != nil && !errors.Is(err, want):
		s.line("FAIL", title, fmt.Sprintf("refused for the wrong reason: %v", err))
	case check != nil && !check(err):
		s.line("FAIL", title, fmt.Sprintf("refused for the wrong reason: %v", err))
	default:
		s.line("refused", title, "("+shorten(err.Error())+")")
		return true
	}
	s.failed = append(s.failed, title)
	return false
}

// fatal records a set-up failure that stops the story.
func (s *steps) fatal(title string, err error) {
	s.line("FAIL", title, err.Error())
	s.failed = append(s.failed, title)
}

func (s *steps) summary() error {
	el := time.Since(s.start).Round(10 * time.Millisecond)
	if len(s.failed) == 0 {
		fmt.Fprintf(s.w, "\nall %d steps behaved as expected (%v)\n", s.n, el)
		return nil
	}
	fmt.Fprintf(s.w, "\n%d of %d steps did NOT behave as expected (%v):\n", len(s.failed), s.n, el)
	for _, f := range s.failed {
		fmt.Fprintf(s.w, "  - %s\n", f)
	}
	return fmt.Errorf("%d step(s) failed", len(s.failed))
}

func shorten(s string) string {
	if len(s) > 110 {
		return s[:107] + "..."
	}
	return s
}
