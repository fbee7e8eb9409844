package report

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

func testKey(t testing.TB, id string, fill byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyHostile(t *testing.T) {
	good := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name   string
		id     string
		secret []byte
	}{
		{"empty_id", "", good},
		{"id_with_colon_breaks_hashed_id_format", "k:1", good},
		{"id_with_space", "k 1", good},
		{"id_with_newline_log_injection", "k1\nevent=x", good},
		{"id_non_ascii", "ключ", good},
		{"id_too_long", strings.Repeat("k", 33), good},
		{"secret_nil", "k1", nil},
		{"secret_31_bytes", "k1", good[:31]},
		{"secret_all_zero", "k1", make([]byte, 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKey(tc.id, tc.secret); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestNewKeyCopiesSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	k, err := NewKey("k1", secret)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := NewHasher(k)
	before := h1.Hash([16]byte{1})
	secret[0] ^= 0xff
	h2, _ := NewHasher(k)
	if h2.Hash([16]byte{1}) != before {
		t.Fatal("changing the caller's slice changed the key")
	}
}

func TestNewHasherHostile(t *testing.T) {
	k1 := testKey(t, "k1", 1)
	for _, tc := range []struct {
		name    string
		current Key
		opts    []Option
		want    error
		msg     string
	}{
		{"zero_current_key", Key{}, nil, ErrInvalidKey, "report: invalid key: the current key is not made by NewKey"},
		{"zero_previous_key", k1, []Option{WithPreviousKeys(Key{})}, ErrInvalidOption, "report: invalid option: WithPreviousKeys: key 0 is not made by NewKey"},
		{"duplicate_key_id", k1, []Option{WithPreviousKeys(testKey(t, "k1", 2))}, ErrInvalidOption, `report: invalid option: WithPreviousKeys: key ID "k1" given twice`},
		{"same_key_twice", k1, []Option{WithPreviousKeys(k1)}, ErrInvalidOption, `report: invalid option: WithPreviousKeys: key ID "k1" given twice`},
		{"duplicate_across_options", k1, []Option{WithPreviousKeys(testKey(t, "k0", 2)), WithPreviousKeys(testKey(t, "k0", 3))}, ErrInvalidOption, `report: invalid option: WithPreviousKeys: key ID "k0" given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHasher(tc.current, tc.opts...)
			if h != nil || !errors.Is(err, tc.want) || err.Error() != tc.msg {
				t.Fatalf("NewHasher = %v, %v\nwant nil, %s", h, err, tc.msg)
			}
		})
	}
}

// TestHashKnownAnswers checks Hash against HMAC-SHA256 computed by Python's
// hmac module (testdata/good_hashed_ids.txt).
func TestHashKnownAnswers(t *testing.T) {
	f, err := os.Open("testdata/good_hashed_ids.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		v := strings.Fields(sc.Text())
		secret, _ := hex.DecodeString(v[1])
		k, err := NewKey(v[0], secret)
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHasher(k)
		if err != nil {
			t.Fatal(err)
		}
		got := h.Hash(mustHex16(t, v[2]))
		if got.String() != v[3] {
			t.Errorf("key %s machine %s: Hash = %s, want %s", v[0], v[2], got, v[3])
		}
		parsed, err := ParseHashedID(v[3])
		if err != nil || parsed != got {
			t.Errorf("ParseHashedID(%s) = %v, %v; want %v", v[3], parsed, err, got)
		}
		if err := h.Verify(mustHex16(t, v[2]), parsed); err != nil {
			t.Errorf("Verify: %v", err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vectors")
	}
}

func TestHasherRotation(t *testing.T) {
	old, cur, foreign := testKey(t, "2026-10", 1), testKey(t, "2026-11", 2), testKey(t, "other", 3)
	mid := mustHex16(t, "0123456789abcdef0123456789abcdef")
	hOld, _ := NewHasher(old)
	hForeign, _ := NewHasher(foreign)
	h, err := NewHasher(cur, WithPreviousKeys(old))
	if err != nil {
		t.Fatal(err)
	}

	byCur, byOld, byForeign := h.Hash(mid), hOld.Hash(mid), hForeign.Hash(mid)
	if byCur.KeyID() != "2026-11" || byOld.KeyID() != "2026-10" || byCur == byOld {
		t.Fatalf("hashes %v and %v do not name their keys", byCur, byOld)
	}
	if current, err := h.Recognize(byCur); !current || err != nil {
		t.Errorf("Recognize(current) = %v, %v", current, err)
	}
	if current, err := h.Recognize(byOld); current || err != nil {
		t.Errorf("Recognize(previous) = %v, %v; want false, nil", current, err)
	}
	if _, err := h.Recognize(byForeign); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Recognize(foreign) err = %v, want ErrUnknownKey", err)
	}
	if _, err := h.Recognize(HashedID{}); !errors.Is(err, ErrInvalidHashedID) {
		t.Errorf("Recognize(zero) err = %v, want ErrInvalidHashedID", err)
	}
	for _, id := range []HashedID{byCur, byOld} {
		if err := h.Verify(mid, id); err != nil {
			t.Errorf("Verify(%v) = %v", id, err)
		}
	}
	if err := h.Verify(mid, byForeign); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(foreign) = %v, want ErrUnknownKey", err)
	}
	other := mid
	other[15] ^= 1
	if err := h.Verify(other, byOld); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(other machine) = %v, want ErrMismatch", err)
	}
	// A foreign hash relabelled with our key ID is still refused.
	forged, _ := ParseHashedID("2026-11:" + strings.SplitN(byForeign.String(), ":", 2)[1])
	if err := h.Verify(mid, forged); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(relabelled) = %v, want ErrMismatch", err)
	}
}

func TestParseHashedIDHostile(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no_key_id", ":" + sum},
		{"no_colon", "k1" + sum},
		{"raw_machine_id_posing_as_hash", "k1:0123456789abcdef0123456789abcdef"},
		{"uppercase_hex_non_canonical", "k1:" + strings.ToUpper(sum)},
		{"short_sum", "k1:" + sum[:62]},
		{"long_sum", "k1:" + sum + "00"},
		{"non_hex", "k1:" + sum[:63] + "g"},
		{"bad_key_id_char", "k/1:" + sum},
		{"key_id_too_long", strings.Repeat("k", 33) + ":" + sum},
		{"huge", strings.Repeat("k", 1<<16) + ":" + sum},
		{"trailing_newline", "k1:" + sum + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseHashedID(tc.in); !errors.Is(err, ErrInvalidHashedID) {
				t.Fatalf("err = %v, want ErrInvalidHashedID", err)
			}
		})
	}
	if _, err := (HashedID{}).MarshalText(); !errors.Is(err, ErrInvalidHashedID) {
		t.Errorf("zero MarshalText err = %v", err)
	}
}

// TestKeyNeverRevealsSecret formats and logs a key every way we can think of
// and looks for the secret in any encoding.
func TestKeyNeverRevealsSecret(t *testing.T) {
	secret := []byte("TOPSECRET-0123456789-abcdefghijk")
	k, err := NewKey("k1", secret)
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, []Key{k}),
			fmt.Sprintf(verb, struct{ K Key }{k}))
	}
	type config struct {
		url string
		key Key // unexported: fmt cannot call Key's methods here
		ptr *Key
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		outputs = append(outputs, fmt.Sprintf(verb, config{"https://x", k, &k}), fmt.Sprintf(verb, &config{"https://x", k, &k}))
	}
	outputs = append(outputs, k.String(), fmt.Sprint(k), fmt.Sprintln(k))
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("rotated", "event", "report_key_loaded", "key", k, "ptr", &k)
		outputs = append(outputs, buf.String())
	}
	//lint:ignore SA9005 the point is that marshalling a Key reveals nothing
	j, _ := json.Marshal(k)
	outputs = append(outputs, string(j))

	needles := []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), "TOPSECRET", fmt.Sprint(secret[:8])}
	for _, out := range outputs {
		for _, n := range needles {
			if strings.Contains(out, n) {
				t.Errorf("output %q reveals the secret", out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(k), "k1") {
		t.Errorf("String %q does not name the key ID", k)
	}
}

// TestHashAllocs holds Hash to the bound of two allocations (it
// makes none today): a server hashes on every report, and BenchmarkHash only
// shows the count, it does not fail when it grows.
func TestHashAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("skipped: the race detector makes sync.Pool drop items, so Hash allocates; run without -race")
	}
	h, _ := NewHasher(testKey(t, "k1", 9))
	mid := [16]byte{1, 2, 3}
	var sink HashedID
	if n := testing.AllocsPerRun(1000, func() { sink = h.Hash(mid) }); n > 2 {
		t.Fatalf("Hash makes %v allocations, want at most 2", n)
	}
	_ = sink
}

func TestHashConcurrent(t *testing.T) {
	h, _ := NewHasher(testKey(t, "k1", 9))
	want := h.Hash([16]byte{1, 2, 3})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				mid := [16]byte{byte(g), byte(i), 1}
				first, second := h.Hash(mid), h.Hash(mid)
				if first != second || h.Hash([16]byte{1, 2, 3}) != want {
					t.Error("Hash is not deterministic under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// VerifyOwner: a machine's own hash passes under the current and a previous
// key; another machine's hash, a raw-machine-ID hash, an unknown key and
// the zero value are refused with the exact sentinel.
func TestVerifyOwner(t *testing.T) {
	oldKey, err := NewKey("k1", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := NewKey("k2", bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHasher(newKey, WithPreviousKeys(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	hOld, _ := NewHasher(oldKey)
	foreign, _ := NewHasher(mustKey(t, "k9", 9))
	mine, other := [16]byte{1, 2, 3}, [16]byte{4, 5, 6}
	for _, c := range []struct {
		name string
		id   HashedID
		want error
	}{
		{"own, current key", h.Hash(mine), nil},
		{"own, previous key", hOld.Hash(mine), nil},
		{"another machine's", h.Hash(other), ErrNotOwnMachine},
		{"another machine's, previous key", hOld.Hash(other), ErrNotOwnMachine},
		{"unknown key", foreign.Hash(mine), ErrUnknownKey},
		{"zero", HashedID{}, ErrInvalidHashedID},
	} {
		err := h.VerifyOwner(mine, c.id)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if errors.Is(c.want, ErrNotOwnMachine) && !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: %v does not match ErrMismatch", c.name, err)
		}
	}
}

func mustKey(t *testing.T, id string, b byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
