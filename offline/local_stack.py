"""`make local`: the whole system on this machine, offline, with no AWS account and no Docker.

Serves the HTTP API (the real purchase handler) on 127.0.0.1:3000 and an AWS-compatible
endpoint (S3, SQS, DynamoDB, Step Functions) on 127.0.0.1:4566. Tables, the state machine and
the flyers bucket come from template.yaml and the real ASL file; an object put into the bucket
reaches the real flyer handler through an S3 notification. The events catalog is DATABASE_URL
when set, else a throwaway MariaDB of the stack's own (installed with apt-get where it can be);
without either, purchases work and flyer ingestion is off. Shows are loaded from SHOWS_FILE.
Buyers need a token from the stack's own issuer (`make token USER=ana`), checked as HTTP API's
JWT authorizer checks it; BUYER_AUTH=none serves the seed's anonymous contract instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pymysql
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from offline import buyer_tokens, cfn_template, mariadb_server, moto_server, traces
from offline.dynamodb_engine import SettingError
from offline.http_api import HttpApi
from offline.lambda_pool import LambdaPool
from offline.throttle import ThrottleLimits, ThrottleSettingError, TokenBucket, stage_limits

HOST = "127.0.0.1"
ROOT = cfn_template.ROOT
DEFAULT_SHOWS_FILE = ROOT / "offline" / "demo_shows.json"
# Any credentials work locally; these keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": cfn_template.REGION,
}
FLYER_QUEUE = "flyer-notifications"
# A failed flyer invocation is seen again after this many seconds, as Lambda retries it.
FLYER_RETRY_SECONDS = 2
SHOW_NAME_MAX = 255
# The database `make local` creates on its own MariaDB.
LOCAL_CATALOG = "catalog"
# BUYER_AUTH: "jwt", a buyer is their token's subject (the template's cognito and oidc), or
# "none", the seed's anonymous userId in the body (the template's BuyerAuth=none).
BUYER_AUTH_CHOICES = ("jwt", "none")
# The buyer the banner's examples act as.
DEMO_BUYER = "ana"


class ConfigError(Exception):
    """The local stack cannot start as configured; the message is the one line to print."""


@dataclass(frozen=True)
class Show:
    name: str
    ticket_price: Decimal
    tickets_available: int


@dataclass(frozen=True)
class LocalConfig:
    api_port: int
    aws_port: int
    shows_file: Path
    database_url: str | None
    concurrency: int
    # Where to look for mariadbd; None: the usual places, installing it there when missing.
    mariadb_bin_dir: Path | None
    buyer_auth: str
    # The stage throttle: the template's ApiRateLimit and ApiBurstLimit, or API_RATE_LIMIT and
    # API_BURST_LIMIT.
    api_limits: ThrottleLimits

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LocalConfig:
        return cls(
            api_port=_port(environ, "LOCAL_API_PORT", 3000),
            aws_port=_port(environ, "LOCAL_AWS_PORT", 4566),
            shows_file=Path(environ.get("SHOWS_FILE") or DEFAULT_SHOWS_FILE),
            database_url=environ.get("DATABASE_URL") or None,
            concurrency=_positive(environ, "LOCAL_LAMBDA_CONCURRENCY", 8),
            mariadb_bin_dir=_directory(environ, "MARIADB_BIN_DIR"),
            buyer_auth=_buyer_auth(environ),
            api_limits=_api_limits(environ),
        )


def _api_limits(environ: Mapping[str, str]) -> ThrottleLimits:
    try:
        return stage_limits(cfn_template.load_template(), environ)
    except ThrottleSettingError as error:
        raise ConfigError(str(error)) from None


def _buyer_auth(environ: Mapping[str, str]) -> str:
    text = environ.get("BUYER_AUTH") or "jwt"
    if text not in BUYER_AUTH_CHOICES:
        raise ConfigError(f"BUYER_AUTH must be jwt or none, not {text!r}")
    return text


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a positive whole number, not {text!r}")
    return int(text)


def _directory(environ: Mapping[str, str], name: str) -> Path | None:
    text = environ.get(name)
    if not text:
        return None
    if not Path(text).is_dir():
        raise ConfigError(f"{name} must name a directory, not {text!r}")
    return Path(text)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    port = _positive(environ, name, default)
    if port > 65535:
        raise ConfigError(f"{name} must be a port number (1-65535), not {port}")
    return port


def load_shows(path: Path) -> list[Show]:
    """The shows of a SHOWS_FILE: a JSON list of {"name", "ticketPrice", "ticketsAvailable"}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"SHOWS_FILE {path}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise ConfigError(f"SHOWS_FILE {path}: not valid JSON ({error})") from None
    if not isinstance(document, list) or not document:
        raise ConfigError(f"SHOWS_FILE {path}: must be a non-empty JSON list of shows")
    shows: dict[str, Show] = {}
    for number, entry in enumerate(document, 1):
        where = f"SHOWS_FILE {path}: show {number}"
        if not isinstance(entry, dict) or set(entry) != {"name", "ticketPrice", "ticketsAvailable"}:
            raise ConfigError(f"{where}: needs exactly name, ticketPrice and ticketsAvailable")
        name, price, tickets = entry["name"], entry["ticketPrice"], entry["ticketsAvailable"]
        if not isinstance(name, str) or not 0 < len(name) <= SHOW_NAME_MAX or name != name.strip():
            raise ConfigError(f"{where}: name must be 1-{SHOW_NAME_MAX} characters, no edge spaces")
        if type(tickets) is not int or tickets < 0:
            raise ConfigError(f"{where}: ticketsAvailable must be a whole number >= 0")
        try:
            ticket_price = Decimal(str(price))
        except InvalidOperation:
            ticket_price = Decimal(-1)
        if isinstance(price, bool) or not ticket_price.is_finite() or ticket_price < 0:
            raise ConfigError(f"{where}: ticketPrice must be a number >= 0")
        show = Show(name, ticket_price, tickets)
        if show.name in shows:
            raise ConfigError(f"{where}: {name!r} appears twice")
        shows[show.name] = show
    return list(shows.values())


def _ensure_port_free(port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers will: connections of a previous run lingering in TIME_WAIT are fine.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise ConfigError(
                f"port {port} on {HOST} is already in use (set {variable} to use another)"
            ) from None


def local_resource_name(template: dict[str, Any], resource_type: str) -> str:
    """The local name of the template's one resource of this type: its logical id, kebab-case."""
    (logical_id,) = cfn_template.resources_of_type(template, resource_type)
    return re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()


class LocalStack:
    """Everything `make local` runs, started in order and stopped in reverse."""

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.shows = load_shows(config.shows_file)
        self.template = cfn_template.load_template()
        self.aws_url = f"http://{HOST}:{config.aws_port}"
        self.api_url = f"http://{HOST}:{config.api_port}"
        self.bucket = local_resource_name(self.template, "AWS::S3::Bucket")
        self.dead_letter_queue = local_resource_name(self.template, "AWS::SQS::Queue")
        # None when there is no database: purchases work, flyer ingestion is off.
        self.catalog_url: str | None = None
        self.state_machine_arn = ""
        # The stack's own token issuer; None with BUYER_AUTH=none.
        self.issuer = buyer_tokens.LocalIssuer(self.api_url) if config.buyer_auth == "jwt" else None
        self._exit = contextlib.ExitStack()
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._exit.close()

    def _start(self) -> None:
        _ensure_port_free(self.config.api_port, "LOCAL_API_PORT")
        _ensure_port_free(self.config.aws_port, "LOCAL_AWS_PORT")
        self.catalog_url = self._start_catalog()
        os.environ.update(LOCAL_CREDENTIALS)
        server = moto_server.start(HOST, self.config.aws_port)
        self._exit.callback(server.stop)
        self._create_aws_resources()
        self._load_shows()
        from flyer_config import DB_SSL_CA, db_environ_from_url

        purchase = self._pool(
            "PurchaseFunction",
            self.config.concurrency,
            {"STATE_MACHINE_ARN": self.state_machine_arn, "BUYER_AUTH": self.config.buyer_auth},
        )
        if self.catalog_url is not None:
            flyer = self._pool(
                "FlyerFunction", 1, {DB_SSL_CA: "", **db_environ_from_url(self.catalog_url)}
            )
            self._start_flyer_delivery(flyer)
        authorizer = self.issuer.authorizer() if self.issuer else None
        throttle = TokenBucket(self.config.api_limits)
        self._serve_http_api(
            HttpApi(self._routes(purchase), self._local_pages, authorizer, throttle)
        )

    def _start_catalog(self) -> str | None:
        if self.config.database_url:
            _check_database(self.config.database_url)
            return self.config.database_url
        bin_dir = self.config.mariadb_bin_dir
        binaries = mariadb_server.find_binaries(
            str(bin_dir) if bin_dir else mariadb_server.DEFAULT_SEARCH_PATH
        )
        # apt-get installs into the usual places only: a MARIADB_BIN_DIR of one's own is not one.
        if binaries is None and bin_dir is None and mariadb_server.can_install():
            print("make local: mariadbd is missing, installing mariadb-server...", flush=True)
            mariadb_server.install()
            binaries = mariadb_server.find_binaries()
        if binaries is None:
            where = f" in MARIADB_BIN_DIR {bin_dir}" if bin_dir else ""
            print(
                f"make local: flyer ingestion is off: no mariadbd found{where};"
                f" {mariadb_server.INSTALL_HINT}, or set DATABASE_URL",
                file=sys.stderr,
                flush=True,
            )
            return None
        try:
            server = mariadb_server.start_mariadb(binaries)
        except mariadb_server.MariaDBUnavailableError as error:
            raise ConfigError(f"the catalog's MariaDB did not start: {error}") from None
        self._exit.callback(server.stop)
        admin = pymysql.connect(host=server.host, port=server.port, user=server.user)
        with contextlib.closing(admin), admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {LOCAL_CATALOG} CHARACTER SET utf8mb4")
        return server.url(LOCAL_CATALOG)

    def _pool(
        self, logical_id: str, concurrency: int, local_values: Mapping[str, str]
    ) -> LambdaPool:
        function = cfn_template.function(self.template, logical_id, local_values)
        environ = {
            **function.environment,
            # Also what the template does not declare: the catalog's local password login.
            **local_values,
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.aws_url,
            # No sync-<host> exists locally for StartSyncExecution.
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        }
        pool = LambdaPool(
            logical_id,
            function.handler,
            [str(folder) for folder in (function.code_dir, *function.layer_dirs)],
            environ,
            concurrency=concurrency,
            memory_mb=function.memory_mb,
            timeout_seconds=function.timeout_seconds,
        )
        self._exit.callback(pool.close)
        # Two warm environments answer the first requests at once; more start under load.
        pool.warm_up(min(2, concurrency))
        return pool

    # ------------------------------------------------------------------ AWS side
    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.aws_url, region_name=cfn_template.REGION)

    def _create_aws_resources(self) -> None:
        cfn_template.create_tables(self.client("dynamodb"), self.template)
        self.state_machine_arn = cfn_template.create_state_machine(
            self.client("stepfunctions"), self.template, "PurchaseStateMachine"
        )
        s3, sqs = self.client("s3"), self.client("sqs")
        s3.create_bucket(Bucket=self.bucket)
        queue_url = sqs.create_queue(
            QueueName=FLYER_QUEUE,
            Attributes={"VisibilityTimeout": str(FLYER_RETRY_SECONDS)},
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sqs.create_queue(QueueName=self.dead_letter_queue)
        # The bucket's notifications of the flyer function, delivered to a queue the stack drains.
        (bucket,) = cfn_template.resources_of_type(self.template, "AWS::S3::Bucket").values()
        notifications = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": [notification["Event"]],
                        "Filter": {
                            "Key": {"FilterRules": notification["Filter"]["S3Key"]["Rules"]}
                        },
                    }
                    for notification in notifications
                    if notification["Function"] == {"Fn::GetAtt": ["FlyerFunction", "Arn"]}
                ]
            },
        )
        self.flyer_queue_url = queue_url

    def _load_shows(self) -> None:
        dynamodb = self.client("dynamodb")
        # Each with the stack's per-buyer cap written on it, as `make show` writes a new show.
        cap = str(cfn_template.parameter_default(self.template, "MaxTicketsPerBuyer"))
        for show in self.shows:
            dynamodb.put_item(
                TableName="ShowTickets",
                Item={
                    "showId": {"S": show.name},
                    "ticketsAvailable": {"N": str(show.tickets_available)},
                    "ticketPrice": {"N": str(show.ticket_price)},
                    "maxPerBuyer": {"N": cap},
                },
            )
        if self.catalog_url is not None:
            load_catalog(self.catalog_url, self.shows)

    # ------------------------------------------------------------------ flyers
    def _start_flyer_delivery(self, flyer: LambdaPool) -> None:
        thread = threading.Thread(
            target=self._deliver_flyers, args=(flyer,), name="flyer-delivery", daemon=True
        )
        thread.start()
        self._exit.callback(thread.join, 5)
        self._exit.callback(self._stopping.set)

    def _deliver_flyers(self, flyer: LambdaPool) -> None:
        """S3 -> the flyer handler, as Lambda's asynchronous invocation does: retried, then
        dead-lettered."""
        sqs = self.client("sqs")
        dead_letters = sqs.get_queue_url(QueueName=self.dead_letter_queue)["QueueUrl"]
        retries = self.template["Resources"]["FlyerFunction"]["Properties"]["EventInvokeConfig"]
        attempts_allowed = 1 + int(retries["MaximumRetryAttempts"])
        while not self._stopping.is_set():
            received = sqs.receive_message(
                QueueUrl=self.flyer_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["ApproximateReceiveCount"],
            )
            for message in received.get("Messages", []):
                event = json.loads(message["Body"])
                if "Records" in event:  # not S3's one-off s3:TestEvent
                    try:
                        flyer.invoke(event)
                    except Exception as error:
                        attempts = int(message["Attributes"]["ApproximateReceiveCount"])
                        print(f"flyer: invocation failed ({error!r}), attempt {attempts}")
                        if attempts < attempts_allowed:
                            continue  # seen again after the visibility timeout
                        sqs.send_message(QueueUrl=dead_letters, MessageBody=message["Body"])
                sqs.delete_message(
                    QueueUrl=self.flyer_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    # ------------------------------------------------------------------ HTTP
    def _routes(self, purchase: LambdaPool) -> dict[tuple[str, str], LambdaPool]:
        events = self.template["Resources"]["PurchaseFunction"]["Properties"]["Events"]
        return {
            (event["Properties"]["Method"], event["Properties"]["Path"]): purchase
            for event in events.values()
            if event["Type"] == "HttpApi"
        }

    def _local_pages(self, request: Request) -> Response:
        if request.path.startswith(buyer_tokens.ISSUER_PATH + "/"):
            return self._issuer_page(request)
        executions = traces.Executions(self.aws_url)
        name = request.path.removeprefix("/_local/traces").strip("/")
        try:
            page = (
                traces.render_html(executions.trace(name))
                if name
                else traces.render_html_list(executions.recent(50))
            )
        except Exception:  # an unknown execution name, typically
            return Response("No such execution.", status=404, content_type="text/plain")
        return Response(page, content_type="text/html; charset=utf-8")

    def _issuer_page(self, request: Request) -> Response:
        """The issuer's discovery document, its JWKS, and a token endpoint for `make token`: the
        signing key never leaves this process, so no private key is written anywhere."""
        if self.issuer is None:
            return Response("BUYER_AUTH=none: no token issuer.", status=404)
        page = request.path.removeprefix(buyer_tokens.ISSUER_PATH)
        if page == buyer_tokens.DISCOVERY_PATH:
            return _json_response(self.issuer.discovery_document())
        if page == buyer_tokens.JWKS_PATH:
            return _json_response(self.issuer.jwks())
        if page == buyer_tokens.TOKEN_PATH and request.method == "POST":
            return self._token_answer(self.issuer, request.form)
        return Response("Not found.", status=404, content_type="text/plain")

    @staticmethod
    def _token_answer(issuer: buyer_tokens.LocalIssuer, form: Mapping[str, str]) -> Response:
        """A token for `sub`. To try the authorizer's refusals, `expires_in` (seconds, 0 or less:
        already expired), `nbf_in` (seconds until it is valid) and `aud` make tokens it refuses."""
        subject = form.get("sub", "")
        if not 0 < len(subject) <= buyer_tokens.SUBJECT_MAX:
            message = f"sub must be 1-{buyer_tokens.SUBJECT_MAX} characters"
            return _json_response({"error": "invalid_request", "message": message}, 400)
        try:
            lifetime = int(form.get("expires_in", buyer_tokens.TOKEN_LIFETIME_SECONDS))
            not_before_in = int(form.get("nbf_in", 0))
        except ValueError:
            message = "expires_in and nbf_in are whole numbers of seconds"
            return _json_response({"error": "invalid_request", "message": message}, 400)
        now = time.time()
        extra: dict[str, Any] = {"nbf": int(now) + not_before_in} if not_before_in else {}
        if "aud" in form:
            extra["aud"] = form["aud"]
        token = issuer.token(subject, now=now, lifetime_seconds=lifetime, extra_claims=extra)
        return _json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
        )

    def _serve_http_api(self, app: HttpApi) -> None:
        server: BaseWSGIServer = make_server(HOST, self.config.api_port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        thread.start()
        self._exit.callback(server.server_close)
        self._exit.callback(server.shutdown)

    # ------------------------------------------------------------------ banner
    def banner(self) -> str:
        if self.catalog_url is None:
            catalog = "none: flyer ingestion is off (no MariaDB, no DATABASE_URL)"
        else:
            kind = "DATABASE_URL" if self.config.database_url else "a throwaway MariaDB"
            catalog = f"{_hide_password(self.catalog_url)} ({kind})"
        tables = ", ".join(cfn_template.resources_of_type(self.template, "AWS::DynamoDB::Table"))
        # With a token, its subject is the buyer: the body names none (README, Quick start).
        buyer = {"userId": DEMO_BUYER} if self.issuer is None else {}
        sale = json.dumps(
            {
                **buyer,
                "showId": self.shows[0].name,
                "cardNumber": "4111 1111 1111 1111",
                "quantity": 2,
            },
            ensure_ascii=False,
        )
        sold_out = next((s for s in self.shows if s.tickets_available == 0), None)
        limits = self.config.api_limits
        if self.issuer is None:
            buyers = "anonymous (BUYER_AUTH=none): the body's userId is the buyer"
            bearer, try_lines = "", []
        else:
            buyers = f"tokens of {self.issuer.url}  (make token USER=<name>)"
            bearer = ' -H "Authorization: Bearer $TOKEN"'
            port = "" if self.config.api_port == 3000 else f"LOCAL_API_PORT={self.config.api_port} "
            try_lines = [f"  export TOKEN=$({port}make -s token USER={DEMO_BUYER})"]
        lines = [
            "Ticketera is running locally. Ctrl-C stops everything.",
            f"  HTTP API          {self.api_url}  (POST /purchases)",
            f"  AWS endpoint      {self.aws_url}  (S3, SQS, DynamoDB, Step Functions;"
            f" any credentials, region {cfn_template.REGION})",
            f"  tables            {tables}",
            f"  state machine     {self.state_machine_arn}",
            f"  flyers bucket     s3://{self.bucket}",
            f"  events catalog    {catalog}",
            f"  shows             {len(self.shows)} from {_relative(self.config.shows_file)}",
            f"  execution traces  {self.api_url}/_local/traces  or  make traces [EXECUTION=name]",
            f"  buyers            {buyers}",
            f"  ceilings          {limits.rate_per_second:g} requests/s, burst {limits.burst}"
            f" (API_RATE_LIMIT, API_BURST_LIMIT: 429 beyond);"
            f" {self.config.concurrency} purchase functions at once"
            f" (LOCAL_LAMBDA_CONCURRENCY: API Gateway's 500 beyond)",
        ]
        if self.issuer is not None:
            lines.append(f"  a token for {DEMO_BUYER}   {self.issuer.token(DEMO_BUYER)}")
        lines += [
            "",
            "Try:",
            *try_lines,
            f"  curl -s -X POST {self.api_url}/purchases{bearer} -d '{sale}'",
        ]
        if sold_out is not None:
            mastercard = "5555 5555 5555 4444"
            body = json.dumps(
                {**buyer, "showId": sold_out.name, "cardNumber": mastercard},
                ensure_ascii=False,
            )
            lines.append(f"  curl -s -X POST {self.api_url}/purchases{bearer} -d '{body}'")
        if self.catalog_url is not None:
            # The organiser's command needs the catalog's own URL: a DATABASE_URL is not repeated.
            url = "$DATABASE_URL" if self.config.database_url else f"'{self.catalog_url}'"
            lines += [
                f"  aws --endpoint-url {self.aws_url} s3 cp flyer.png"
                f" 's3://{self.bucket}/{self.shows[0].name}.png'",
                f"  make show NAME='New show' PRICE=20 TICKETS=100 DATABASE_URL={url}",
            ]
        lines += ["", "Ready."]
        return "\n".join(lines)

    def wait(self) -> None:
        self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()


def _json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _relative(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def _hide_password(url: str) -> str:
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@", 1) if password else url


def connect_catalog(url: str) -> Any:
    """A connection to the catalog a DATABASE_URL names, opened as the flyer function does."""
    from events_db import open_connection
    from flyer_config import DbSettings, db_environ_from_url

    return open_connection(DbSettings.from_env(db_environ_from_url(url)))


def _check_database(url: str) -> None:
    from flyer_config import ConfigError as DatabaseConfigError
    from flyer_config import db_environ_from_url

    try:
        settings = db_environ_from_url(url)
    except DatabaseConfigError as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None
    try:
        connect_catalog(url).close()
    except pymysql.err.MySQLError as error:
        where = f"{settings['DB_HOST']}:{settings['DB_PORT']}/{settings['DB_NAME']}"
        raise ConfigError(f"DATABASE_URL: cannot connect to {where} ({error.args[-1]})") from None


def load_catalog(url: str, shows: list[Show]) -> None:
    """Apply the flyer function's migrations to the catalog and upsert the shows."""
    from events_schema import apply_migrations
    from show_catalog import ShowSpec, upsert_show

    connection = connect_catalog(url)
    with contextlib.closing(connection):
        apply_migrations(connection)
        for show in shows:
            upsert_show(connection, ShowSpec(show.name, show.ticket_price, show.tickets_available))


@contextlib.contextmanager
def _stop_on_signals(stack: LocalStack) -> Iterator[None]:
    previous = {
        sig: signal.signal(sig, lambda *_: stack.stop()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    # The catalog's code, and the card layer its show names are checked with.
    sys.path[:0] = [str(ROOT / "functions" / "flyer"), str(ROOT / "layers" / "card_validation")]
    try:
        config = LocalConfig.from_env()
        with LocalStack(config) as stack, _stop_on_signals(stack):
            print(stack.banner(), flush=True)
            stack.wait()
            print("Stopping...", flush=True)
    except (ConfigError, SettingError) as error:
        print(f"make local: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
