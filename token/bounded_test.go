package token_test

import (
	"runtime"
	"testing"

	"github.com/lpsec/lpsec/token/internal/storetest"
)

// TestBoundedRotations: many rotations of one machine name leave the memory
// store, and the admin list, the size they were (issue 14 item 3).
func TestBoundedRotations(t *testing.T) {
	s := memoryStore(t)
	storetest.Bounded(t, s, storetest.BoundedN(t), func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}, nil)
	runtime.KeepAlive(s)
}
