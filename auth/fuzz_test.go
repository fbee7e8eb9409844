package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add(basicHeader("alice:pw"), "")
	f.Add("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "")
	f.Add("basic "+base64.StdEncoding.EncodeToString([]byte("a:b:c")), "")
	f.Add("Basic YWxp\r\nY2U6cHc=", "")
	f.Add(basicHeader("a:b"), basicHeader("c:d"))
	f.Add("Basic ====", "")
	f.Add(basicHeader("\xff:\x00"), "")
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		values := []string{h1}
		if h2 != "" {
			values = append(values, h2)
		}
		user, password, err := parseAuthorization(values)
		if err != nil {
			return
		}
		if len(values) != 1 || user == "" || !validText(user) || !validText(password) || strings.Contains(user, ":") {
			t.Fatalf("accepted %q -> %q, %q", values, user, password)
		}
		// What we accept is exactly what the canonical encoding gives.
		_, tok, _ := strings.Cut(strings.Trim(h1, " \t"), " ")
		if got := base64.StdEncoding.EncodeToString([]byte(user + ":" + password)); got != strings.TrimLeft(tok, " ") {
			t.Fatalf("accepted non-canonical %q", h1)
		}
	})
}

func FuzzParseUsers(f *testing.F) {
	f.Add("alice:" + bcryptSample + ",bob:" + argonExample)
	f.Add("alice:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.")
	f.Add("a:b,,c:d")
	f.Add("bob:" + argonExample + ",alice:" + bcryptSample)
	f.Add("a:" + bcryptSample + ",a:" + bcryptSample)
	f.Fuzz(func(t *testing.T, spec string) {
		u, err := ParseUsers(spec)
		if err != nil {
			if !errors.Is(err, ErrInvalidUsers) {
				t.Fatalf("refusal %v is not ErrInvalidUsers", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range u.entries {
			if seen[e.name] || checkUserName(e.name) != nil || e.cred == nil {
				t.Fatalf("accepted bad entry %q", e.name)
			}
			seen[e.name] = true
		}
	})
}

func FuzzReadHtpasswd(f *testing.F) {
	f.Add([]byte("# c\n\nalice:" + bcryptSample + "\r\nbob:" + argonExample + "\n"))
	f.Add([]byte("alice:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\n"))
	f.Add([]byte("alice:xROXmIhxZpssA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ReadHtpasswd(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidUsers) {
				t.Fatalf("refusal %v is not ErrInvalidUsers", err)
			}
			return
		}
		if u.Len() > maxUsers {
			t.Fatalf("%d users", u.Len())
		}
	})
}

func FuzzParseArgon2id(f *testing.F) {
	f.Add(argonExample)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ=$MRbrZM0xwYf4kXoe8E")
	f.Add("$argon2id$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseArgon2id(s)
		if err != nil {
			return
		}
		// Every accepted string is within bounds and canonical.
		if c.memory > maxArgon2Memory || c.time > maxArgon2Time || c.threads > maxArgon2Threads || c.threads == 0 ||
			len(c.key) < minArgon2Key || len(c.key) > maxArgon2Key || len(c.salt) < minArgon2Salt || len(c.salt) > maxArgon2Salt {
			t.Fatalf("accepted out-of-bounds %q", s)
		}
		if enc := encodeArgon2id(c); enc != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, enc)
		}
	})
}
