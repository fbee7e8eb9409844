"""Narrow an lpsec login macaroon with the Python macaroonbakery's standard
allow and deny caveats, as any bakery client can, and print the httpbakery
Macaroons header value for lpsec (Go) to verify.

stdin: {"macaroon": <bakery JSON>, "allow": [actions], "deny": [actions]}
"""
import json
import sys

import macaroonbakery.bakery as bakery
import macaroonbakery.checkers as checkers

from interop_discharge import header


def main():
    req = json.load(sys.stdin)
    m = bakery.Macaroon.from_dict(req["macaroon"])
    if req.get("allow") is not None:
        m.add_caveat(checkers.allow_caveat(req["allow"]))
    if req.get("deny"):
        m.add_caveat(checkers.deny_caveat(req["deny"]))
    print(header([m.macaroon]))


if __name__ == "__main__":
    main()
