package authheader

import (
	"errors"
	"strings"
	"testing"
)

const max = 64

// TestCredentialsHostile: each hostile or broken header, with the exact
// error it must produce.
func TestCredentialsHostile(t *testing.T) {
	long := "Bearer " + strings.Repeat("a", max-len("Bearer ")+1)
	for _, tc := range []struct {
		name   string
		values []string
		want   error
	}{
		{"missing", nil, ErrMissing},
		{"two_headers_same_scheme", []string{"Bearer abc", "Bearer abc"}, ErrMultiple},
		{"two_headers_other_scheme_first", []string{"Basic abc", "Bearer abc"}, ErrMultiple},
		{"two_headers_one_empty", []string{"", "Bearer abc"}, ErrMultiple},
		{"one_byte_over_bound", []string{long}, ErrTooLong},
		{"over_bound_other_scheme", []string{"Digest " + strings.Repeat("x", max)}, ErrTooLong},
		{"empty", []string{""}, ErrMalformed},
		{"only_whitespace", []string{" \t "}, ErrMalformed},
		{"scheme_only", []string{"Bearer"}, ErrNotToken68},
		{"scheme_and_spaces", []string{"Bearer   "}, ErrNotToken68},
		{"nul_in_credentials", []string{"Bearer ab\x00c"}, ErrMalformed},
		{"cr_lf_injection", []string{"Bearer abc\r\nX-Admin: 1"}, ErrMalformed},
		{"lf_in_credentials", []string{"Bearer ab\nc"}, ErrMalformed},
		{"tab_separator", []string{"Bearer\tabc"}, ErrMalformed},
		{"tab_inside", []string{"Bearer ab\tc"}, ErrMalformed},
		{"del", []string{"Bearer abc\x7f"}, ErrMalformed},
		{"non_ascii", []string{"Bearer abcé"}, ErrMalformed},
		{"utf8_lookalike_scheme", []string{"Bеarer abc"}, ErrMalformed}, // Cyrillic е
		{"leading_nul", []string{"\x00Bearer abc"}, ErrMalformed},
		{"two_credentials", []string{"Bearer abc def"}, ErrNotToken68},
		{"auth_params_for_our_scheme", []string{`Bearer realm="x"`}, ErrNotToken68},
		{"comma_list", []string{"Bearer abc, Bearer def"}, ErrNotToken68},
		{"padding_only", []string{"Bearer ==="}, ErrNotToken68},
		{"padding_in_middle", []string{"Bearer ab=c"}, ErrNotToken68},
		{"scheme_with_separator", []string{"Bea(rer abc"}, ErrMalformed},
		{"leading_separator_then_scheme", []string{`"Bearer" abc`}, ErrMalformed},
		{"other_scheme", []string{"Basic YTpi"}, ErrOtherScheme},
		{"other_scheme_auth_params", []string{`Digest username="a", realm="b"`}, ErrOtherScheme},
		{"scheme_prefix", []string{"Bearerx abc"}, ErrOtherScheme},
		{"scheme_truncated", []string{"Beare abc"}, ErrOtherScheme},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Credentials(tc.values, "Bearer", max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Credentials = %q, %v; want %v", got, err, tc.want)
			}
			if got != "" {
				t.Fatalf("credentials %q returned with an error", got)
			}
			for _, v := range tc.values {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q quotes the header", err)
				}
			}
		})
	}
}

func TestCredentialsAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"canonical", "Bearer abc", "abc"},
		{"scheme_lower", "bearer abc", "abc"},
		{"scheme_upper", "BEARER abc", "abc"},
		{"several_spaces", "Bearer    abc", "abc"}, // 1*SP
		{"ows_around_value", " \tBearer abc\t ", "abc"},
		{"token68_alphabet", "Bearer aZ09-._~+/==", "aZ09-._~+/=="},
		{"uuid", "Bearer 0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"at_bound", "Bearer " + strings.Repeat("a", max-len("Bearer ")), strings.Repeat("a", max-len("Bearer "))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Credentials([]string{tc.value}, "Bearer", max)
			if err != nil || got != tc.want {
				t.Fatalf("Credentials = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzCredentials: never a panic; anything accepted is the header's one
// token68 after the scheme and 1*SP, within the bound.
func FuzzCredentials(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc==", "Basic YTpi", "", "Bearer", "Bearer a\r\nb", " Bearer a ", "Bearer a b", "Bearer\ta"} {
		f.Add(s, "Bearer")
	}
	f.Add("Macaroon W3sid", "Macaroon")
	f.Fuzz(func(t *testing.T, value, scheme string) {
		got, err := Credentials([]string{value}, scheme, max)
		if err != nil {
			if got != "" {
				t.Fatal("credentials with an error")
			}
			for _, e := range []error{ErrMalformed, ErrOtherScheme, ErrTooLong} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if len(value) > max || !isToken68(got) {
			t.Fatalf("accepted %q from %q", got, value)
		}
		v := strings.Trim(value, " \t")
		sch, rest, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(sch, scheme) || strings.TrimLeft(rest, " ") != got {
			t.Fatalf("accepted %q from %q for scheme %q", got, value, scheme)
		}
		if _, err := Credentials([]string{value, value}, scheme, max); !errors.Is(err, ErrMultiple) {
			t.Fatalf("two headers: %v", err)
		}
	})
}
