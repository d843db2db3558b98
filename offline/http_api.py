"""The HTTP API on localhost: each request becomes API Gateway's HTTP API payload 2.0 event for
the template's route, answered by the real handler; unknown routes get API Gateway's 404. With a
JWT authorizer, a request without a valid token gets API Gateway's 401 and never reaches the
function; a valid token's claims reach it in requestContext.authorizer.jwt. The stage throttle
answers 429 beyond its rate and burst; a function throttled at its concurrency is API Gateway's
500 (docs/design.md, Known limits)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as InvocationTimeout
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from offline.buyer_tokens import JwtAuthorizer, TokenRefusedError, event_claims
from offline.lambda_pool import LambdaPool, LambdaThrottledError
from offline.throttle import TokenBucket

# API Gateway's own limit on a request body.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Local-only pages (execution traces) live under this prefix, outside the API's routes.
LOCAL_PREFIX = "/_local/"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def http_api_event(request: Request, body: bytes, route_key: str) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration (payload format 2.0)."""
    now = time.time()
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        # API Gateway joins repeated headers with commas; cookies travel separately.
        if key != "cookie":
            headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.user_agent.string,
            },
            "requestId": secrets.token_urlsafe(12),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if request.cookies:
        event["cookies"] = [f"{name}={value}" for name, value in request.cookies.items()]
    if query:
        event["queryStringParameters"] = query
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True)
class HttpApi:
    """WSGI application: routes of the template -> pools of execution environments."""

    # (method, path) -> the function that answers it
    routes: dict[tuple[str, str], LambdaPool]
    # What answers under LOCAL_PREFIX
    local_pages: Callable[[Request], Response]
    # The routes' JWT authorizer; None: anonymous routes (BuyerAuth=none)
    authorizer: JwtAuthorizer | None = None
    # The stage's DefaultRouteSettings throttle; None: unthrottled
    throttle: TokenBucket | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response = self.respond(request)
        elapsed_ms = (time.monotonic() - started) * 1000
        print(f"{request.method} {request.path} {response.status_code} {elapsed_ms:.0f} ms")
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.path.startswith(LOCAL_PREFIX):
            return self.local_pages(request)
        pool = self.routes.get((request.method, request.path))
        if pool is None:
            return _json(404, {"message": "Not Found"})
        # The stage's throttle counts every request to a route; here it runs before the authorizer
        # (AWS does not document the order). HTTP API's own 429:
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
        if self.throttle is not None and not self.throttle.take():
            return _json(429, {"message": "Too Many Requests"})
        claims = None
        if self.authorizer is not None:
            try:
                claims = self.authorizer.claims(request.headers.get("Authorization"))
            except TokenRefusedError as refused:
                return _json(401, {"message": "Unauthorized"}, refused.headers)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _json(413, {"message": "Request Entity Too Large"})
        body = request.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            return _json(413, {"message": "Request Entity Too Large"})
        event = http_api_event(request, body, f"{request.method} {request.path}")
        if claims is not None:
            # The route asks for no authorization scopes, so none are passed.
            jwt = {"claims": event_claims(claims), "scopes": None}
            event["requestContext"]["authorizer"] = {"jwt": jwt}
        try:
            result = pool.invoke(event)
        except InvocationTimeout:
            return _json(503, {"message": "Service Unavailable"})
        # Lambda refused the invocation (TooManyRequestsException): "If the Lambda API rejects the
        # invocation request, API Gateway returns a 500 error code"
        # (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
        except LambdaThrottledError:
            return _json(500, {"message": "Internal Server Error"})
        # API Gateway answers any function error this way, whatever the error.
        except Exception:
            return _json(500, {"message": "Internal Server Error"})
        return _proxy_response(result)


def _proxy_response(result: Any) -> Response:
    """API Gateway's reading of a Lambda proxy result (payload format 2.0)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format 2.0 treats any other value as a JSON body with status 200.
        return _json(200, result)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(payload, status=int(result["statusCode"]))
    response.headers.clear()
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response
