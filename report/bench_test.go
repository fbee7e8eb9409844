package report

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkHash compares Hasher.Hash with the plain crypto/hmac code a
// caller would otherwise write over the same bytes.
func BenchmarkHash(b *testing.B) {
	secret := bytes.Repeat([]byte{0x42}, 32)
	mid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b.Run("lpsec", func(b *testing.B) {
		k, _ := NewKey("k1", secret)
		h, _ := NewHasher(k)
		b.ReportAllocs()
		var sink HashedID
		for b.Loop() {
			sink = h.Hash(mid)
		}
		_ = sink
	})
	b.Run("baseline", func(b *testing.B) {
		msg := append([]byte(hashContext), mid[:]...)
		b.ReportAllocs()
		var sink []byte
		for b.Loop() {
			m := hmac.New(sha256.New, secret)
			m.Write(msg)
			sink = m.Sum(nil)
		}
		_ = sink
	})
}

// BenchmarkDecode compares Decode (strict, validating) with plain
// json.Unmarshal of the same typical report into an unvalidated struct.
func BenchmarkDecode(b *testing.B) {
	typical, err := os.ReadFile("testdata/good_report_typical.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("lpsec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(typical)))
		for b.Loop() {
			if _, err := Decode(bytes.NewReader(typical), atTestNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		type plain struct {
			Architecture  string `json:"architecture"`
			CPUModel      string `json:"cpu_model"`
			KernelVersion string `json:"kernel_version"`
			BootTime      string `json:"boot_time"`
			UptimeSeconds int64  `json:"uptime_seconds"`
			MachineID     string `json:"machine_id"`
			PatchVersion  string `json:"patch_version"`
			PatchState    string `json:"patch_state"`
			LastCheck     string `json:"last_check"`
			ClientVersion string `json:"client_version"`
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(typical)))
		for b.Loop() {
			var p plain
			if err := json.Unmarshal(typical, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
