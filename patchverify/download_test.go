package patchverify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
)

func TestDownload(t *testing.T) {
	data := buildTestPatch(t)
	good := sum(data)
	mux := http.NewServeMux()
	mux.HandleFunc("/patch.tar.gz", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2<<20))
		w.Write(make([]byte, 2<<20))
	})
	mux.HandleFunc("/chunked-big", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 64; i++ {
			w.Write(make([]byte, 64<<10))
			w.(http.Flusher).Flush()
		}
	})
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	plain := httptest.NewServer(mux)
	defer plain.Close()
	redirect := http.NewServeMux()
	redirect.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/patch.tar.gz", http.StatusFound)
	})
	tlsRedirect := httptest.NewTLSServer(redirect)
	defer tlsRedirect.Close()
	redirClient := tlsRedirect.Client()

	ctx := context.Background()
	tmp := t.TempDir()
	f, err := Download(ctx, tlsSrv.Client(), tlsSrv.URL+"/patch.tar.gz", good, WithRequireHTTPS(), WithTempDir(tmp))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("temporary file mode %v, %v", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary file still has a name: %v", ents)
	}
	p, err := VerifyPatch(ctx, f, good, newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Metadata.Module != testMeta.Module {
		t.Errorf("metadata %+v", p.Metadata)
	}

	// Plain http is allowed only when HTTPS is not required.
	if f, err := Download(ctx, plain.Client(), plain.URL+"/patch.tar.gz", good); err != nil {
		t.Errorf("plain http without WithRequireHTTPS: %v", err)
	} else {
		f.Close()
	}

	for _, tt := range []struct {
		name   string
		client *http.Client
		url    string
		want   string
		opts   []Option
		err    error
	}{
		{"http_refused", plain.Client(), plain.URL + "/patch.tar.gz", good, []Option{WithRequireHTTPS()}, ErrInsecureURL},
		{"redirect_to_http_refused", redirClient, tlsRedirect.URL + "/", good, []Option{WithRequireHTTPS()}, ErrInsecureURL},
		{"file_scheme_refused", plain.Client(), "file:///etc/passwd", good, nil, ErrInsecureURL},
		{"checksum_mismatch", tlsSrv.Client(), tlsSrv.URL + "/patch.tar.gz", sum([]byte("x")), nil, ErrChecksumMismatch},
		{"checksum_malformed", tlsSrv.Client(), tlsSrv.URL + "/patch.tar.gz", "abc", nil, ErrChecksumMismatch},
		{"content_length_too_large", tlsSrv.Client(), tlsSrv.URL + "/big", good, []Option{WithMaxPatchSize(1 << 20)}, ErrTooLarge},
		{"streamed_too_large", tlsSrv.Client(), tlsSrv.URL + "/chunked-big", good, []Option{WithMaxPatchSize(1 << 20)}, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Download(ctx, tt.client, tt.url, tt.want, append(tt.opts, WithTempDir(tmp))...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Download = %v, want %v", err, tt.err)
			}
			if f != nil {
				t.Fatal("file returned with an error")
			}
		})
	}
	if _, err := Download(ctx, tlsSrv.Client(), tlsSrv.URL+"/missing", good); err == nil {
		t.Error("HTTP 404 accepted")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("failed downloads left files: %v", ents)
	}
}
