package tokenpg

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// notifyStore is a Store (never connected) whose authentication cache
// holds one record, with that record's digest.
func notifyStore(t testing.TB) (*Store, core.Digest) {
	s, err := NewStore(sql.OpenDB(noPgx{}), token.WithAuthCache(time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := core.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s.cache.put(d, token.Machine{ID: d.String(), Machine: "m"}, time.Now(), s.cache.generation(), 0)
	return s, d
}

// Anyone who may NOTIFY on the channel can send any payload: what it can
// do is make this store read again (evict a record, drop a listing),
// never make it accept anything. Hostile payloads change nothing.
func TestNotifiedPayloads(t *testing.T) {
	const id = "{id}" // replaced by the cached record's ID
	for _, tc := range []struct {
		name, payload string
		listings      bool // the listings are invalidated
		evicts        bool // the cached record is evicted
	}{
		{"registration table", "lpsec_token_registration", true, false},
		{"sync table", "lpsec_token_sync", true, false},
		{"machine token", machinePayload + id, false, true},
		{"machine table truncated", "lpsec_token_machine", false, true},
		{"empty", "", false, false},
		{"upper case table", "LPSEC_TOKEN_REGISTRATION", false, false},
		{"table with suffix", "lpsec_token_registration ", false, false},
		{"machine prefix only", machinePayload, false, false},
		{"machine, short id", machinePayload + "{short}", false, false},
		{"machine, long id", machinePayload + id + "00", false, false},
		{"machine, upper-case hex (the same ID)", machinePayload + "{ID}", false, true},
		{"machine, not hex", machinePayload + strings.Repeat("zz", 32), false, false},
		{"machine, other id", machinePayload + strings.Repeat("ab", 32), false, false},
		{"machine, NUL", machinePayload + "\x00" + id, false, false},
		{"huge", strings.Repeat("x", 8000), false, false},
		{"heartbeat of a follower", "pgnotify-heartbeat:abc", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d := notifyStore(t)
			payload := strings.NewReplacer("{id}", d.String(), "{ID}", strings.ToUpper(d.String()),
				"{short}", d.String()[:62]).Replace(tc.payload)
			if got := s.notified(payload); got != tc.listings {
				t.Errorf("notified(%.40q) = %v, want %v", payload, got, tc.listings)
			}
			_, kept := s.cache.get(d, time.Now(), 0)
			if kept == tc.evicts {
				t.Errorf("notified(%.40q): record kept %v, want %v", payload, kept, !tc.evicts)
			}
		})
	}
	// Without an authentication cache, machine payloads are still handled.
	s, err := NewStore(sql.OpenDB(noPgx{}))
	if err != nil {
		t.Fatal(err)
	}
	if s.notified(machinePayload+strings.Repeat("ab", 32)) || s.notified("lpsec_token_machine") {
		t.Error("machine payloads invalidated the listings")
	}
}

func FuzzNotified(f *testing.F) {
	_, d := notifyStore(f)
	for _, seed := range []string{"", "lpsec_token_registration", "lpsec_token_sync", "lpsec_token_machine",
		machinePayload, machinePayload + d.String(), machinePayload + strings.Repeat("zz", 32), "pgnotify-heartbeat:x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		s, d := notifyStore(t)
		listings := s.notified(payload)
		if listings != (payload == "lpsec_token_registration" || payload == "lpsec_token_sync") {
			t.Fatalf("notified(%q) = %v", payload, listings)
		}
		_, kept := s.cache.get(d, time.Now(), 0)
		named := strings.HasPrefix(payload, machinePayload) && strings.EqualFold(payload[len(machinePayload):], d.String())
		if !kept && payload != "lpsec_token_machine" && !named {
			t.Fatalf("notified(%q) evicted a record it does not name", payload)
		}
	})
}
