"""Both directions of httpbakery's discharge-required answer with the Python
macaroonbakery.

stdin: {"macaroon": <bakery JSON>, "lpsec_body": <the body lpsec wrote>}
stdout: {"content": <the body Python's discharge_required_response writes>,
         "headers": <its headers>,
         "parsed": <what Python's Error.from_dict reads from lpsec's body>}
"""
import base64
import json
import sys

import macaroonbakery.bakery as bakery
from macaroonbakery import httpbakery

req = json.load(sys.stdin)
m = bakery.Macaroon.from_dict(req["macaroon"])
content, headers = httpbakery.discharge_required_response(m, "/", "auth", "discharge required")
err = httpbakery.Error.from_dict(json.loads(req["lpsec_body"]))
print(json.dumps({
    "content": content.decode(),
    "headers": headers,
    "parsed": {
        "code": err.code,
        "path": err.info.macaroon_path,
        "suffix": err.info.cookie_name_suffix,
        "id64": base64.b64encode(err.info.macaroon.macaroon.identifier_bytes).decode(),
        "version": err.info.macaroon.version,
    },
}))
