package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/testenv"
)

// bakeryDeployment is an entitlement service and a server that accepts its
// discharges, as the story runs them.
type bakeryDeployment struct {
	server, contracts *daemon
	contractToken     string
	caBundle          string
}

func startBakeryDeployment(t *testing.T) *bakeryDeployment {
	t.Helper()
	f := getFixtures(t)
	dir := t.TempDir()
	d := &bakeryDeployment{contractToken: "contract-" + randHex(12)}
	d.contracts = start(t, nil, "contracts", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "contracts"),
		"--contract-tokens", d.contractToken)
	d.server = start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_LOG_LEVEL=info"}, "server",
		append(serverArgs(f, filepath.Join(dir, "server")),
			"--contracts-url", d.contracts.URL, "--contracts-public-key", d.contracts.line(t, `public key (\S+) `))...)
	d.caBundle = bundle(t, dir, d.server.line(t, `CA in (\S+) \(`), d.contracts.line(t, `CA in (\S+)`))
	return d
}

// exchange is one HTTP round trip as the client's transport saw it.
type exchange struct {
	method, url string
	status      int
}

// recorder is the stock client's transport: TLS with the test CAs, the
// contract token on requests to the entitlement service (how any user
// would configure an http.Client), and a log of the round trips.
type recorder struct {
	mu            sync.Mutex
	log           []exchange
	contractsHost string
	contractToken string
	next          http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == r.contractsHost {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+r.contractToken)
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.log = append(r.log, exchange{req.Method, req.URL.Path, resp.StatusCode})
		r.mu.Unlock()
	}
	return resp, err
}

// TestStockGoBakeryClientRegisters: go-macaroon-bakery v3.0.2's
// httpbakery.Client, with no lpsec code on its side, registers a machine
// against the example server, the example entitlement service
// discharging: 401 → POST /discharge 200 → PUT 200, and the machine token
// it gets works.
func TestStockGoBakeryClientRegisters(t *testing.T) {
	t.Parallel()
	d := startBakeryDeployment(t)
	ca, err := os.ReadFile(d.caBundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cu, _ := url.Parse(d.contracts.URL)
	rec := &recorder{contractsHost: cu.Host, contractToken: d.contractToken,
		next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := httpbakery.NewClient()
	c.Client.Transport = rec

	machine := randHex(16)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.server.URL+"/v1/client/"+machine, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("stock httpbakery client: %v\nround trips: %+v", err, rec.log)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rr api.RegisterResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &rr) != nil || rr.Machine != machine || rr.MachineToken == "" {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	want := []exchange{
		{"PUT", "/v1/client/" + machine, 401},
		{"POST", "/discharge", 200},
		{"PUT", "/v1/client/" + machine, 200},
	}
	if len(rec.log) != len(want) {
		t.Fatalf("round trips %+v, want %+v", rec.log, want)
	}
	for i := range want {
		if rec.log[i] != want[i] {
			t.Fatalf("round trip %d: %+v, want %+v", i, rec.log[i], want[i])
		}
	}
	// Stopped first: Wait returns only once its stderr is fully copied, so
	// the count cannot race the copy.
	d.contracts.stop(t)
	if n := strings.Count(d.contracts.stderr.String(), `"event":"discharge_granted"`); n != 1 {
		t.Fatalf("entitlement service granted %d discharges, want 1", n)
	}
	// The machine token is real: it lists patches for this machine.
	preq, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.server.URL+"/v1/client/"+machine+"/patches?kernel="+machineKernel, nil)
	preq.Header.Set("Authorization", "Bearer "+rr.MachineToken)
	presp, err := (&http.Client{Transport: rec.next}).Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != 200 {
		t.Fatalf("machine token from the bakery flow: %d", presp.StatusCode)
	}

	// Bound to what it claims: the discharged macaroon the client now holds
	// (its cookie) registers this machine only. Replayed for another
	// machine, it is refused 403 and no machine is added.
	su, _ := url.Parse(d.server.URL + "/")
	cookies := c.Client.Jar.Cookies(su)
	if len(cookies) != 1 || cookies[0].Name != "macaroon-auth" {
		t.Fatalf("client cookies %v, want macaroon-auth", cookies)
	}
	plain := &http.Client{Transport: rec.next}
	other := randHex(16)
	oreq, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.server.URL+"/v1/client/"+other, nil)
	oreq.Header.Set("Bakery-Protocol-Version", "3")
	oreq.AddCookie(cookies[0])
	oresp, err := plain.Do(oreq)
	if err != nil {
		t.Fatal(err)
	}
	obody, _ := io.ReadAll(oresp.Body)
	oresp.Body.Close()
	if oresp.StatusCode != 403 || !strings.Contains(string(obody), `"code":"denied"`) {
		t.Fatalf("discharged macaroon replayed for another machine: %d %s", oresp.StatusCode, obody)
	}
	// A version 0 request (no Bakery-Protocol-Version) gets httpbakery's 407.
	v0, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.server.URL+"/v1/client/"+other, nil)
	v0resp, err := plain.Do(v0)
	if err != nil {
		t.Fatal(err)
	}
	v0body, _ := io.ReadAll(v0resp.Body)
	v0resp.Body.Close()
	if v0resp.StatusCode != 407 || v0resp.Header.Get("WWW-Authenticate") != "" || !strings.Contains(string(v0body), `"Code":"macaroon discharge required"`) {
		t.Fatalf("version 0 request: %d %q %s", v0resp.StatusCode, v0resp.Header.Get("WWW-Authenticate"), v0body)
	}
	admin, err := client.NewAdmin(d.server.URL, d.caBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", getFixtures(t).password); err != nil {
		t.Fatal(err)
	}
	var machines api.TokenList
	if err := admin.Do(ctx, http.MethodGet, "/v1/admin/machines", nil, nil, &machines); err != nil {
		t.Fatal(err)
	}
	if len(machines.Tokens) != 1 || machines.Tokens[0].Machine != machine {
		t.Fatalf("machines after the replay: %+v, want only %s", machines.Tokens, machine)
	}
}

// pythonClient is the Python side: macaroonbakery.httpbakery.Client as
// Debian ships it. The subclass only adds the contract token to requests for
// the entitlement service; HTTPAdapter.send is wrapped to record every
// round trip below the client's retry hook.
const pythonClient = `
import json, sys
import requests, requests.adapters
from macaroonbakery import httpbakery

server, contracts, token, machine = sys.argv[1:5]
log = []
send = requests.adapters.HTTPAdapter.send
def recording_send(self, req, **kw):
    resp = send(self, req, **kw)
    log.append([req.method, requests.utils.urlparse(req.url).path, resp.status_code])
    return resp
requests.adapters.HTTPAdapter.send = recording_send

class Client(httpbakery.Client):
    def request(self, method, url, **kwargs):
        if url.startswith(contracts):
            kwargs['headers'] = dict(kwargs.get('headers') or {}, Authorization='Bearer ' + token)
        return super().request(method, url, **kwargs)

c = Client(interaction_methods=[])
resp = requests.put(server + '/v1/client/' + machine, auth=c.auth(), cookies=c.cookies)
print(json.dumps({'status': resp.status_code, 'body': resp.json(), 'log': log}))
`

// TestStockPythonBakeryClientRegisters: the same flow with Python's
// macaroonbakery.httpbakery.Client (python3-macaroonbakery), run by
// /usr/bin/python3.
func TestStockPythonBakeryClientRegisters(t *testing.T) {
	t.Parallel()
	py := testenv.LookPath(t, "/usr/bin/python3", "python3-macaroonbakery")
	if out, err := exec.Command(py, "-c", "import macaroonbakery.httpbakery, requests").CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("python3 cannot import macaroonbakery.httpbakery: %v\n%s", err, out)
		}
		t.Skipf("skipped: python3 cannot import macaroonbakery.httpbakery (install python3-macaroonbakery): %s", out)
	}
	d := startBakeryDeployment(t)
	machine := randHex(16)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", pythonClient, d.server.URL, d.contracts.URL, d.contractToken, machine)
	cmd.Env = append(cleanEnv(), "REQUESTS_CA_BUNDLE="+d.caBundle, "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python client: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		Status int
		Body   api.RegisterResponse
		Log    [][3]any
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if res.Status != 200 || res.Body.Machine != machine || res.Body.MachineToken == "" {
		t.Fatalf("python registration: %s", out)
	}
	want := [][3]any{{"PUT", "/v1/client/" + machine, 401.0}, {"POST", "/discharge", 200.0}, {"PUT", "/v1/client/" + machine, 200.0}}
	if len(res.Log) != len(want) {
		t.Fatalf("round trips %v, want %v", res.Log, want)
	}
	for i := range want {
		if res.Log[i] != want[i] {
			t.Fatalf("round trip %d: %v, want %v", i, res.Log[i], want[i])
		}
	}
	// Stopped first: Wait returns only once its stderr is fully copied, so
	// the count cannot race the copy.
	d.contracts.stop(t)
	if n := strings.Count(d.contracts.stderr.String(), `"event":"discharge_granted"`); n != 1 {
		t.Fatalf("entitlement service granted %d discharges, want 1", n)
	}
}

// TestLoginMacaroonRoundTrip: the login response's "macaroon" field, sent
// back base64-encoded as the examples README says (Authorization: Macaroon
// or the Macaroons header), is accepted; "authorization" too. Tampering
// with it is still refused.
func TestLoginMacaroonRoundTrip(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", serverArgs(f, filepath.Join(t.TempDir(), "server"))...)
	admin, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lr, err := admin.Login(ctx, "alice", f.password)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(lr.Macaroon)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(js), `"v":`, `"x":0,"v":`, 1) // still the same macaroon: must pass
	for name, c := range map[string]struct {
		hdr  http.Header
		want int
	}{
		"authorization field":            {http.Header{"Authorization": {lr.Header}}, 200},
		"macaroon field, std base64":     {http.Header{"Authorization": {"Macaroon " + base64.StdEncoding.EncodeToString(js)}}, 200},
		"macaroon field, url base64":     {http.Header{"Authorization": {"Macaroon " + base64.RawURLEncoding.EncodeToString(js)}}, 200},
		"macaroon field, Macaroons hdr":  {http.Header{"Macaroons": {base64.StdEncoding.EncodeToString(js)}}, 200},
		"macaroon field, extra key":      {http.Header{"Authorization": {"Macaroon " + base64.StdEncoding.EncodeToString([]byte(tampered))}}, 200},
		"macaroon field, forged sig":     {http.Header{"Authorization": {forge(t, lr.Header)}}, 403},
		"macaroon field, null macaroon":  {http.Header{"Authorization": {"Macaroon " + base64.StdEncoding.EncodeToString([]byte(`{"m":null,"v":3}`))}}, 400},
		"macaroon field, not base64 [!]": {http.Header{"Authorization": {"Macaroon " + string(js)}}, 400},
	} {
		admin.Authorization = ""
		err := admin.Do(ctx, http.MethodGet, "/v1/admin/auth-tokens", c.hdr, nil, nil)
		var se *client.ServerError
		switch {
		case c.want == 200 && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != 200 && (!asServerError(err, &se) || se.Status != c.want):
			t.Errorf("%s: %v, want %d", name, err, c.want)
		}
	}
}
