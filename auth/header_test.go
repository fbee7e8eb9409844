package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func basicHeader(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestParseAuthorizationGood(t *testing.T) {
	for name, tc := range map[string]struct {
		values         []string
		user, password string
	}{
		"plain":                  {[]string{basicHeader("alice:pw")}, "alice", "pw"},
		"scheme lower case":      {[]string{"basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))}, "alice", "pw"},
		"scheme mixed case":      {[]string{"bAsIc " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))}, "alice", "pw"},
		"several spaces":         {[]string{"Basic    " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))}, "alice", "pw"},
		"colons in password":     {[]string{basicHeader("alice:a:b::c")}, "alice", "a:b::c"},
		"empty password":         {[]string{basicHeader("alice:")}, "alice", ""},
		"UTF-8":                  {[]string{basicHeader("zoë:pässwörd€")}, "zoë", "pässwörd€"},
		"RFC 7617 example":       {[]string{"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}, "Aladdin", "open sesame"},
		"surrounding whitespace": {[]string{"  " + basicHeader("alice:pw") + "\t"}, "alice", "pw"},
	} {
		t.Run(name, func(t *testing.T) {
			u, p, err := parseAuthorization(tc.values)
			if err != nil || u != tc.user || p != tc.password {
				t.Fatalf("got %q, %q, %v", u, p, err)
			}
		})
	}
}

// hostileHeaders are Authorization headers crafted to get past a lax
// parser, each with the error that must refuse it.
var hostileHeaders = map[string]struct {
	values []string
	want   error
}{
	"no header":                  {nil, errNoCredentials},
	"bearer scheme":              {[]string{"Bearer abc"}, errNoCredentials},
	"scheme without space":       {[]string{"BasicYWxpY2U6cHc="}, errMalformedHeader}, // '=' is not a tchar
	"tab after scheme":           {[]string{"Basic\tYWxpY2U6cHc="}, errMalformedHeader},
	"NUL after credentials":      {[]string{basicHeader("alice:pw") + "\x00"}, errMalformedHeader},
	"two headers":                {[]string{basicHeader("alice:pw"), basicHeader("bob:pw")}, errMultipleHeaders},
	"two identical headers":      {[]string{basicHeader("alice:pw"), basicHeader("alice:pw")}, errMultipleHeaders},
	"oversized header":           {[]string{basicHeader("alice:" + strings.Repeat("a", maxAuthorization))}, errHeaderTooLarge},
	"no credentials":             {[]string{"Basic"}, errNotBase64},
	"only spaces after scheme":   {[]string{"Basic    "}, errNotBase64},
	"not base64":                 {[]string{"Basic !!!!"}, errNotBase64},
	"url-safe base64":            {[]string{"Basic " + base64.URLEncoding.EncodeToString([]byte("a?>:~~~??"))}, errNotBase64},
	"missing padding":            {[]string{"Basic YWxpY2U6cA"}, errNotBase64},
	"excess padding":             {[]string{"Basic YWxpY2U6cHc=="}, errNotBase64},
	"padding in the middle":      {[]string{"Basic YW=xpY2U6cHc="}, errNotBase64},
	"non-zero trailing bits":     {[]string{"Basic YWxpY2U6cHd="}, errNotBase64},
	"CRLF inside base64":         {[]string{"Basic YWxp\r\nY2U6cHc="}, errMalformedHeader},
	"tab inside base64":          {[]string{"Basic YWxp\tY2U6cHc="}, errMalformedHeader},
	"space inside base64":        {[]string{"Basic YWxp Y2U6cHc="}, errNotBase64},
	"two credentials":            {[]string{basicHeader("alice:pw") + ", " + basicHeader("bob:pw")}, errNotBase64},
	"no colon":                   {[]string{basicHeader("alicepw")}, errNoColon},
	"empty user":                 {[]string{basicHeader(":pw")}, errEmptyUser},
	"empty both":                 {[]string{basicHeader(":")}, errEmptyUser},
	"NUL in user":                {[]string{basicHeader("al\x00ice:pw")}, errBadText},
	"NUL in password":            {[]string{basicHeader("alice:p\x00w")}, errBadText},
	"newline in password":        {[]string{basicHeader("alice:pw\n")}, errBadText},
	"DEL in user":                {[]string{basicHeader("alice\x7f:pw")}, errBadText},
	"C1 NEL in password":         {[]string{basicHeader("alice:p\u0085w")}, errBadText},
	"invalid UTF-8 in user":      {[]string{basicHeader("\xffalice:pw")}, errBadText},
	"overlong UTF-8 slash":       {[]string{basicHeader("alice:\xc0\xafpw")}, errBadText},
	"UTF-16 surrogate":           {[]string{basicHeader("alice:\xed\xa0\x80")}, errBadText},
	"user over 256 bytes":        {[]string{basicHeader(strings.Repeat("u", 257) + ":pw")}, errTooLong},
	"password over 1024 bytes":   {[]string{basicHeader("alice:" + strings.Repeat("p", 1025))}, errTooLong},
	"Latin-1 encoded credential": {[]string{basicHeader("zo\xeb:pw")}, errBadText},
}

func TestParseAuthorizationHostile(t *testing.T) {
	for name, tc := range hostileHeaders {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseAuthorization(tc.values)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for name, tc := range map[string]struct {
		remote string
		xff    []string
		want   string
	}{
		"direct":                            {"192.0.2.1:4242", nil, "192.0.2.1"},
		"forged header from untrusted peer": {"192.0.2.1:4242", []string{"203.0.113.9"}, "192.0.2.1"},
		"trusted proxy":                     {"10.1.2.3:80", []string{"203.0.113.9"}, "203.0.113.9"},
		"client-forged left hop ignored":    {"10.1.2.3:80", []string{"198.51.100.7, 203.0.113.9"}, "203.0.113.9"},
		"chain of trusted proxies":          {"10.1.2.3:80", []string{"203.0.113.9, 10.9.9.9", "10.8.8.8"}, "203.0.113.9"},
		"garbage hop stops the walk":        {"10.1.2.3:80", []string{"203.0.113.9, junk"}, "10.1.2.3"},
		"trusted proxy, no header":          {"10.1.2.3:80", nil, "10.1.2.3"},
		"IPv6 client via proxy":             {"[fd00::1]:443", []string{"2001:db8::5"}, "2001:db8::5"},
		"IPv4-mapped remote":                {"[::ffff:192.0.2.1]:1", nil, "192.0.2.1"},
		"oversized header":                  {"10.1.2.3:80", []string{strings.Repeat("1.1.1.1,", 1000)}, "10.1.2.3"},
		"unix socket":                       {"@", nil, "invalid IP"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, proxies).String(); got != tc.want {
				t.Fatalf("client = %s, want %s", got, tc.want)
			}
		})
	}
	if got := addrKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); got != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 throttle key = %s, want the /64", got)
	}
}
