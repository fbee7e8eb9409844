package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Bounds on a users configuration. It is normally written by an operator,
// but it may come from a file or an environment variable an attacker can
// influence, and every entry costs memory.
const (
	maxUsersInput = 1 << 20 // bytes of spec or htpasswd file
	maxUsers      = 10000
	maxLineLen    = 4096
	maxUserName   = 256 // bytes
)

// Users is a validated set of user names and their stored password hashes,
// as loaded by [ParseUsers] or [ReadHtpasswd]. Every hash is bcrypt
// ($2a$, $2b$, $2y$) or argon2id (PHC string form) within the upper cost
// bounds; [NewBasic] also enforces the minimum cost. The zero Users has no
// users.
type Users struct {
	entries []userEntry // in input order
}

type userEntry struct {
	name string
	cred *credential
}

// Len reports the number of users.
func (u Users) Len() int { return len(u.entries) }

// ParseUsers parses the comma-separated form `alice:$2y$10$...,bob:$argon2id$v=19$m=19456,t=2,p=1$...`.
// The commas inside argon2id parameters need no escaping: a piece with no
// colon continues the previous entry. Spaces around entries are ignored.
// It refuses an empty spec, empty entries, duplicate users and every hash
// that is not bcrypt or argon2id, with an error naming the user and the
// format found.
func ParseUsers(spec string) (Users, error) {
	if len(spec) > maxUsersInput {
		return Users{}, fmt.Errorf("%w: spec longer than %d bytes", ErrInvalidUsers, maxUsersInput)
	}
	if strings.TrimSpace(spec) == "" {
		return Users{}, fmt.Errorf("%w: empty spec", ErrInvalidUsers)
	}
	var items []string
	for _, piece := range strings.Split(spec, ",") {
		if len(items) > 0 && strings.TrimSpace(piece) != "" && !strings.Contains(piece, ":") {
			items[len(items)-1] += "," + piece
			continue
		}
		items = append(items, piece)
	}
	b := usersBuilder{seen: make(map[string]bool)}
	for i, item := range items {
		item = strings.TrimSpace(item)
		if err := b.add(item); err != nil {
			return Users{}, fmt.Errorf("%w: entry %d: %v", ErrInvalidUsers, i+1, err)
		}
	}
	return b.users, nil
}

// ReadHtpasswd reads an htpasswd file: one user:hash per line; blank lines
// and lines starting with # are skipped; CRLF line ends are accepted. The
// same checks as [ParseUsers] apply, so a file written by `htpasswd -B`
// loads and one written by `htpasswd -m` is refused with an error saying
// how to re-hash.
func ReadHtpasswd(r io.Reader) (Users, error) {
	lr := &io.LimitedReader{R: r, N: maxUsersInput + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	b := usersBuilder{seen: make(map[string]bool)}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := b.add(text); err != nil {
			return Users{}, fmt.Errorf("%w: htpasswd line %d: %v", ErrInvalidUsers, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Users{}, fmt.Errorf("%w: htpasswd line %d longer than %d bytes", ErrInvalidUsers, line+1, maxLineLen)
		}
		return Users{}, fmt.Errorf("auth: reading htpasswd: %w", err)
	}
	if lr.N <= 0 {
		return Users{}, fmt.Errorf("%w: htpasswd file longer than %d bytes", ErrInvalidUsers, maxUsersInput)
	}
	return b.users, nil
}

type usersBuilder struct {
	users Users
	seen  map[string]bool
}

func (b *usersBuilder) add(entry string) error {
	name, hash, ok := strings.Cut(entry, ":")
	if !ok {
		return errors.New("not user:hash")
	}
	if err := checkUserName(name); err != nil {
		return err
	}
	if b.seen[name] {
		return fmt.Errorf("duplicate user %q", name)
	}
	if len(b.users.entries) >= maxUsers {
		return fmt.Errorf("more than %d users", maxUsers)
	}
	cred, err := parseHash(name, hash)
	if err != nil {
		return err
	}
	b.seen[name] = true
	b.users.entries = append(b.users.entries, userEntry{name: name, cred: cred})
	return nil
}

func checkUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > maxUserName:
		return fmt.Errorf("user name longer than %d bytes", maxUserName)
	case !validText(name):
		return errors.New("user name is not UTF-8 or holds control characters")
	}
	return nil
}

// validText reports whether s is valid UTF-8 without control characters
// (C0, DEL, C1), as RFC 7617 requires of user-id and password.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}
