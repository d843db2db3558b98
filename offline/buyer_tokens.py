"""Buyer tokens offline: `make local`'s own issuer, and the checks HTTP API's JWT authorizer makes.

The checks follow AWS's published workflow for HTTP API JWT authorizers
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html):
the token from the Authorization header, alone or after "Bearer "; an RSA signature by the JWKS
key its `kid` names; `iss` equal to the issuer; `aud`, or `client_id` when the token has no
`aud`, one of the audiences; `exp` after now; `nbf` and `iat` not after now. Any failure is
API Gateway's 401 `{"message":"Unauthorized"}`, with the `www-authenticate` challenge AWS's
troubleshooting page shows for a refused token
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-jwt.html).
Signatures are joserfc's; nothing here reads a signature itself.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

# Where `make local` serves its issuer: under the local-only prefix, on the HTTP API's port.
ISSUER_PATH = "/_local/issuer"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
TOKEN_PATH = "/token"  # noqa: S105 - a path, not a secret
# The audience (app client id) of local tokens, as a Cognito app client id is of Cognito's.
LOCAL_AUDIENCE = "ticketera-local"
# A subject is a buyer's userId: the API's 1-128 characters.
SUBJECT_MAX = 128
# Cognito's default access token lifetime.
TOKEN_LIFETIME_SECONDS = 3600
# HTTP API JWT authorizers verify RSA signatures only.
ALGORITHMS = ("RS256", "RS384", "RS512")
# The one description AWS publishes; the others name their check in the same words.
WRONG_AUDIENCE = "the token does not have a valid audience"


class TokenRefusedError(Exception):
    """The request is answered 401 before it reaches the function. `description` is None when
    there was no token at all."""

    def __init__(self, description: str | None) -> None:
        super().__init__(description or "no token")
        self.description = description

    @property
    def headers(self) -> dict[str, str]:
        if self.description is None:
            return {}
        return {
            "www-authenticate": f'Bearer scope="" error="invalid_token"'
            f' error_description="{self.description}"'
        }


@dataclass(frozen=True)
class JwtAuthorizer:
    """An HTTP API JWT authorizer: its issuer, audiences and the issuer's public keys."""

    issuer: str
    audiences: frozenset[str]
    keys: KeySet

    def claims(self, authorization: str | None, now: float | None = None) -> dict[str, Any]:
        """The verified token's claims, or TokenRefusedError."""
        if not authorization:
            raise TokenRefusedError(None)
        token = authorization.removeprefix("Bearer ")
        try:
            # AWS verifies with the JWKS key the token's kid names: no kid, no key.
            kid = jws.extract_compact(token.encode()).headers().get("kid")
            if not isinstance(kid, str):
                raise TokenRefusedError("the token does not name its signing key (kid)")
            key = self.keys.get_by_kid(kid)
            claims = jwt.decode(token, key, algorithms=list(ALGORITHMS)).claims
        except JoseError as error:
            raise TokenRefusedError(_jose_description(error)) from None
        except ValueError:  # not even three base64url parts
            raise TokenRefusedError("the token is malformed") from None
        self._check(claims, time.time() if now is None else now)
        return claims

    def _check(self, claims: Mapping[str, Any], now: float) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenRefusedError("the token does not have a valid issuer")
        # AWS reads client_id (Cognito's access tokens) only when the token has no aud.
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            raise TokenRefusedError(WRONG_AUDIENCE)
        expires = _number(claims.get("exp"))
        if expires is None or expires <= now:
            raise TokenRefusedError("the token has expired")
        for name in ("nbf", "iat"):
            moment = _number(claims.get(name, now))
            if moment is None or moment > now:
                raise TokenRefusedError("the token is not valid yet")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _jose_description(error: JoseError) -> str:
    if error.error == "bad_signature":
        return "the token signature is invalid"
    if error.error in {"invalid_key_id", "missing_key"}:
        return "the token is not signed by a key of the issuer"
    if error.error == "unsupported_algorithm":
        return "the token signing algorithm is not supported"
    return "the token is malformed"


def event_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as payload format 2.0 carries them in requestContext.authorizer.jwt.claims: every
    value a string (numbers and booleans as their JSON text, lists as [a b])."""
    return {name: _claim_text(value) for name, value in claims.items()}


def _claim_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    return json.dumps(value, separators=(",", ":"))


class LocalIssuer:
    """`make local`'s OpenID issuer: one RSA key made at start and kept in memory only, so a
    token outlives neither the stack nor a restart."""

    def __init__(self, base_url: str, audience: str = LOCAL_AUDIENCE) -> None:
        self.url = base_url.rstrip("/") + ISSUER_PATH
        self.audience = audience
        self._key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS_PATH,
            "token_endpoint": self.url + TOKEN_PATH,
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self._key]).as_dict(private=False))

    def authorizer(self) -> JwtAuthorizer:
        """The authorizer of the local HTTP API, built from the public JWKS as AWS builds it."""
        public_keys = KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]
        return JwtAuthorizer(self.url, frozenset({self.audience}), public_keys)

    def token(
        self,
        subject: str,
        *,
        now: float | None = None,
        lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token for `subject`, shaped as Cognito's (client_id, token_use)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": subject,
            "iss": self.url,
            "client_id": self.audience,
            "token_use": "access",
            "iat": issued,
            "exp": issued + lifetime_seconds,
            "jti": secrets.token_hex(16),
            **(extra_claims or {}),
        }
        header = {"alg": "RS256", "kid": self._key.kid}
        return jwt.encode(header, claims, self._key)
