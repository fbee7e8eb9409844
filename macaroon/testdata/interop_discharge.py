"""Discharge, with the Python macaroonbakery, the third-party caveats of a
macaroon minted by lpsec (Go).

stdin: {"macaroon": <bakery JSON>, "third_party_key": <bakery key pair JSON>,
        "condition": <the only condition to accept>}
stdout: the httpbakery Macaroons header value (base64url of the JSON array
        primary + bound discharges).
"""
import base64
import datetime
import json
import sys

import macaroonbakery.bakery as bakery
import macaroonbakery.checkers as checkers
from pymacaroons.serializers import json_serializer


def key_pair(d):
    return bakery.PrivateKey.deserialize(d["private"])


class Checker(bakery.ThirdPartyCaveatChecker):
    def __init__(self, want):
        self.want = want

    def check_third_party_caveat(self, ctx, info):
        cond = info.condition.decode() if isinstance(info.condition, bytes) else info.condition
        if cond != self.want:
            raise bakery.PermissionDenied("condition %r not satisfied" % cond)
        expiry = datetime.datetime.utcnow() + datetime.timedelta(minutes=5)
        return [checkers.time_before_caveat(expiry)]


def header(ms):
    arr = [json.loads(m.serialize(json_serializer.JsonSerializer())) for m in ms]
    return base64.urlsafe_b64encode(json.dumps(arr).encode()).decode().rstrip("=")


def main():
    req = json.load(sys.stdin)
    m = bakery.Macaroon.from_dict(req["macaroon"])
    key = key_pair(req["third_party_key"])
    checker = Checker(req["condition"])

    def get_discharge(cav, payload):
        return bakery.discharge(checkers.AuthContext(), cav.caveat_id_bytes, payload,
                                key, checker, bakery.ThirdPartyStore())

    ms = bakery.discharge_all(m, get_discharge)
    print(header(ms))


if __name__ == "__main__":
    main()
