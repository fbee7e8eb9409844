package auth

import (
	"context"
	"slices"
	"sync"
)

// gate hands out the hash slots. Callers wait in one FIFO per priority
// and a freed slot goes to the oldest caller of the best priority. When
// the queue is full, a caller of a better priority than the worst one
// waiting takes that one's place (the newest of them is refused as
// overloaded): a flood of failing attempts then fills the queue without
// keeping out anyone better placed, and the first login of a user from a
// clean client waits only behind other clean ones.
type gate struct {
	mu    sync.Mutex
	free  int // idle slots; > 0 only when nobody waits
	limit int // callers allowed to wait
	n     int // callers waiting
	fifo  [numPrio][]*waiter
}

type waiter struct {
	ready chan error // nil: the slot is yours; ErrOverloaded: bumped
}

func newGate(slots, queue int) *gate {
	return &gate{free: slots, limit: queue}
}

// acquire returns nil with a slot, ErrOverloaded, or ctx's error (the
// caller gave up waiting).
func (g *gate) acquire(ctx context.Context, prio int) error {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	if g.n >= g.limit {
		v := g.bump(prio)
		if v == nil {
			g.mu.Unlock()
			return ErrOverloaded
		}
		v.ready <- ErrOverloaded
	}
	w := &waiter{ready: make(chan error, 1)}
	g.fifo[prio] = append(g.fifo[prio], w)
	g.n++
	g.mu.Unlock()

	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.fifo[prio], w); i >= 0 {
		g.fifo[prio] = slices.Delete(g.fifo[prio], i, i+1)
		g.n--
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	// Granted or bumped while ctx ended: hand a granted slot on.
	if err := <-w.ready; err == nil {
		g.release()
	}
	return ctx.Err()
}

// bump removes and returns the newest waiter of the worst priority worse
// than prio, or nil.
func (g *gate) bump(prio int) *waiter {
	for p := numPrio - 1; p > prio; p-- {
		if q := g.fifo[p]; len(q) > 0 {
			v := q[len(q)-1]
			g.fifo[p] = q[:len(q)-1]
			g.n--
			return v
		}
	}
	return nil
}

// release gives the slot to the oldest waiter of the best priority, or
// back to the pool.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range g.fifo {
		if q := g.fifo[p]; len(q) > 0 {
			w := q[0]
			q[0] = nil
			g.fifo[p] = q[1:]
			g.n--
			w.ready <- nil
			return
		}
	}
	g.free++
}

// waiting returns the number of callers waiting, for tests.
func (g *gate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}
