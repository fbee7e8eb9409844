"""Acquire discharges with the Python httpbakery client from the lpsec (Go)
Discharger's /discharge endpoint, over TLS (REQUESTS_CA_BUNDLE names the
test server's certificate).

stdin: {"macaroon": <bakery JSON>}
stdout: the httpbakery Macaroons header value.
"""
import json
import sys

import macaroonbakery.bakery as bakery
import macaroonbakery.httpbakery as httpbakery

from interop_discharge import header


def main():
    req = json.load(sys.stdin)
    m = bakery.Macaroon.from_dict(req["macaroon"])
    client = httpbakery.Client()
    print(header(bakery.discharge_all(m, client.acquire_discharge)))


if __name__ == "__main__":
    main()
