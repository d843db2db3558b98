"""`make token USER=ana`: a buyer's token from the running `make local`'s own issuer.

The stack keeps its signing key in memory and mints tokens at its token endpoint; this asks it
for one, so a token is only ever signed by the stack that will check it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from offline.buyer_tokens import ISSUER_PATH, TOKEN_PATH


def fetch_token(subject: str, api_port: str, **refusable: str) -> str:
    """A token of the stack on `api_port`; `refusable` (expires_in, nbf_in, aud) asks for one
    its authorizer refuses."""
    url = f"http://127.0.0.1:{api_port}{ISSUER_PATH}{TOKEN_PATH}"
    data = urllib.parse.urlencode({"sub": subject, **refusable}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
        return str(json.loads(answer.read())["access_token"])


def main(argv: list[str]) -> int:
    subject = argv[0] if argv else ""
    api_port = os.environ.get("LOCAL_API_PORT") or "3000"
    try:
        print(fetch_token(subject, api_port))
    except urllib.error.HTTPError as error:
        if error.code == 404:
            reason = "it runs with BUYER_AUTH=none, which takes no token"
        else:
            reason = json.loads(error.read()).get("message", error.reason)
        print(f"make token: {reason}", file=sys.stderr)
        return 2
    except OSError:
        print(
            f"make token: no make local answers on port {api_port}"
            " (start it, or set LOCAL_API_PORT to its port)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
