"""Mint a resource macaroon with the Python macaroonbakery, under a root key
held by lpsec, add a third-party caveat, discharge it, and print the
httpbakery Macaroons header value for lpsec (Go) to verify.

stdin: {"root_key": b64, "storage_id": b64, "location": str,
        "service_key": <bakery key pair JSON>, "third_party_key": <key pair JSON>,
        "third_party_location": str, "condition": str,
        "entity": str, "action": str, "expiry_unix": int}
"""
import base64
import datetime
import json
import sys

import macaroonbakery.bakery as bakery
import macaroonbakery.checkers as checkers

from interop_discharge import Checker, header, key_pair


class FixedStore(object):
    def __init__(self, key, id):
        self.key, self.id = key, id

    def get(self, id):
        return self.key if id == self.id else None

    def root_key(self):
        return self.key, self.id


def main():
    req = json.load(sys.stdin)
    store = FixedStore(base64.b64decode(req["root_key"]), base64.b64decode(req["storage_id"]))
    tp_key = key_pair(req["third_party_key"])
    locator = bakery.ThirdPartyStore()
    locator.add_info(req["third_party_location"],
                     bakery.ThirdPartyInfo(public_key=tp_key.public_key, version=bakery.LATEST_VERSION))
    oven = bakery.Oven(key=key_pair(req["service_key"]), location=req["location"],
                       locator=locator, root_keystore_for_ops=lambda ops: store)
    expiry = datetime.datetime.utcfromtimestamp(req["expiry_unix"])
    m = oven.macaroon(bakery.LATEST_VERSION, expiry,
                      [checkers.Caveat(location=req["third_party_location"], condition=req["condition"])],
                      [bakery.Op(entity=req["entity"], action=req["action"])])
    checker = Checker(req["condition"])

    def get_discharge(cav, payload):
        return bakery.discharge(checkers.AuthContext(), cav.caveat_id_bytes, payload,
                                tp_key, checker, bakery.ThirdPartyStore())

    print(header(bakery.discharge_all(m, get_discharge)))


if __name__ == "__main__":
    main()
