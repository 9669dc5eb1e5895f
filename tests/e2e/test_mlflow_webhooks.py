"""Registry webhooks through databricks-sdk's `w.model_registry`, delivered to a tiny HTTP
receiver on 127.0.0.1: events from Kiln's registry routes and from MLflow's own handlers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.ml import HttpUrlSpec, RegistryWebhookEvent, RegistryWebhookStatus

from support import Server, assert_error

SOURCE = "dbfs:/databricks/mlflow-tracking/0/0123456789abcdef/artifacts/model"
SECRET = "s3cr3t"
E = RegistryWebhookEvent

# The ML area loads once, before any client call can time out on it.
pytestmark = pytest.mark.usefixtures("mlflow_area")


class Receiver:
    """Records every POST it gets; `wait_for` blocks until a matching one arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.cond:
                    receiver.received.append((dict(self.headers.items()), body))
                    receiver.cond.notify_all()
                reply = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(body) for _h, body in self.received]

    def wait_for(self, event: str, **match: Any) -> tuple[dict[str, str], dict[str, Any]]:
        def found() -> tuple[dict[str, str], dict[str, Any]] | None:
            for headers, body in self.received:
                data = json.loads(body)
                if data["event"] == event and all(data.get(k) == v for k, v in match.items()):
                    return headers, data
            return None

        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout=30), (
                event,
                self.received,
            )
            hit = found()
            assert hit is not None
            return hit

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _signed(headers: dict[str, str], data: dict[str, Any], raw: bytes | None = None) -> bool:
    body = raw if raw is not None else json.dumps(data).encode()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return headers.get("X-Databricks-Signature") == expected


def test_webhooks_fire_on_registry_events(
    admin: httpx.Client, sdk: WorkspaceClient, receiver: Receiver
) -> None:
    mr = sdk.model_registry
    wide = mr.create_webhook(
        [E.REGISTERED_MODEL_CREATED], http_url_spec=HttpUrlSpec(url=receiver.url)
    ).webhook
    assert wide is not None and wide.id and wide.status == RegistryWebhookStatus.ACTIVE
    mr.create_model("wh-model")
    receiver.wait_for("REGISTERED_MODEL_CREATED", model_name="wh-model", webhook_id=wide.id)

    events = [
        E.MODEL_VERSION_CREATED,
        E.TRANSITION_REQUEST_CREATED,
        E.TRANSITION_REQUEST_TO_STAGING_CREATED,
        E.COMMENT_CREATED,
        E.MODEL_VERSION_TRANSITIONED_STAGE,
        E.MODEL_VERSION_TRANSITIONED_TO_PRODUCTION,
        E.MODEL_VERSION_TAG_SET,
    ]
    spec = HttpUrlSpec(url=receiver.url, secret=SECRET, authorization="Bearer abc")
    hook = mr.create_webhook(
        events, http_url_spec=spec, model_name="wh-model", description="all"
    ).webhook
    assert hook is not None and hook.model_name == "wh-model" and hook.description == "all"
    assert hook.http_url_spec is not None and hook.http_url_spec.url == receiver.url
    # A webhook to a receiver that is not there never slows or fails the API call.
    mr.create_webhook(
        [E.MODEL_VERSION_CREATED],
        http_url_spec=HttpUrlSpec(url="http://127.0.0.1:9/nothing"),
        model_name="wh-model",
    )

    version = mr.create_model_version("wh-model", SOURCE).model_version
    assert version is not None and version.version == "1"
    headers, data = receiver.wait_for("MODEL_VERSION_CREATED", version="1", webhook_id=hook.id)
    assert data["model_name"] == "wh-model" and isinstance(data["event_timestamp"], int)
    assert headers.get("Authorization") == "Bearer abc"
    raw = next(b for h, b in receiver.received if json.loads(b) == data)
    assert _signed(headers, data, raw)

    mr.create_transition_request("wh-model", "1", "Staging", comment="please")
    _h, data = receiver.wait_for("TRANSITION_REQUEST_CREATED", to_stage="Staging")
    assert data["text"] == "please"
    receiver.wait_for("TRANSITION_REQUEST_TO_STAGING_CREATED", version="1")
    mr.create_comment("wh-model", "1", "nice")
    receiver.wait_for("COMMENT_CREATED", text="nice")
    mr.transition_stage("wh-model", "1", "Production", False)
    receiver.wait_for("MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", version="1")
    receiver.wait_for("MODEL_VERSION_TRANSITIONED_STAGE", to_stage="Production")
    # MLflow's own handlers fire them too.
    r = admin.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": "wh-model", "version": "1", "stage": "Archived"},
    )
    assert r.status_code == 200, r.text
    receiver.wait_for("MODEL_VERSION_TRANSITIONED_STAGE", to_stage="Archived")
    mr.set_model_version_tag("wh-model", "1", "team", "ml")
    _h, data = receiver.wait_for("MODEL_VERSION_TAG_SET", version="1")
    assert data["tags"] == [{"key": "team", "value": "ml"}]
    # Not listened to: no TRANSITIONED_TO_ARCHIVED delivery for this webhook.
    assert not [e for e in receiver.events() if e["event"].endswith("TO_ARCHIVED")]


def test_webhook_status_test_list_update_delete(sdk: WorkspaceClient, receiver: Receiver) -> None:
    mr = sdk.model_registry
    mr.create_model("wh-quiet")
    hook = mr.create_webhook(
        [E.MODEL_VERSION_CREATED, E.COMMENT_CREATED],
        http_url_spec=HttpUrlSpec(url=receiver.url, secret=SECRET),
        model_name="wh-quiet",
        status=RegistryWebhookStatus.TEST_MODE,
    ).webhook
    assert hook is not None and hook.id
    tested = mr.test_registry_webhook(hook.id, event=E.COMMENT_CREATED)
    assert tested.status_code == 200 and tested.body == '{"ok": true}'
    headers, data = receiver.wait_for("COMMENT_CREATED", webhook_id=hook.id)
    raw = next(b for h, b in receiver.received if json.loads(b) == data)
    assert _signed(headers, data, raw)
    # TEST_MODE and DISABLED webhooks are not triggered by real events.
    mr.create_model_version("wh-quiet", SOURCE)
    updated = mr.update_webhook(hook.id, status=RegistryWebhookStatus.DISABLED).webhook
    assert updated is not None and updated.status == RegistryWebhookStatus.DISABLED
    mr.create_model_version("wh-quiet", SOURCE)
    updated = mr.update_webhook(hook.id, status=RegistryWebhookStatus.ACTIVE).webhook
    mr.create_model_version("wh-quiet", SOURCE)
    receiver.wait_for("MODEL_VERSION_CREATED", webhook_id=hook.id, version="3")
    created = [
        e
        for e in receiver.events()
        if e["webhook_id"] == hook.id and e["event"] == "MODEL_VERSION_CREATED"
    ]
    assert [e["version"] for e in created] == ["3"]

    listed = list(mr.list_webhooks(model_name="wh-quiet"))
    assert [w.id for w in listed] == [hook.id]
    assert [w.id for w in mr.list_webhooks(model_name="wh-quiet", events=[E.COMMENT_CREATED])] == [
        hook.id
    ]
    assert list(mr.list_webhooks(model_name="wh-quiet", events=[E.MODEL_VERSION_TAG_SET])) == []
    everything = list(mr.list_webhooks(max_results=1))
    assert len(everything) >= 2 and len({w.id for w in everything}) == len(everything)
    mr.delete_webhook(hook.id)
    assert list(mr.list_webhooks(model_name="wh-quiet")) == []
    with pytest.raises(NotFound):
        mr.delete_webhook(hook.id)
    with pytest.raises(NotFound):
        mr.test_registry_webhook(hook.id)


WH = "/api/2.0/mlflow/registry-webhooks"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "ftp://x/y"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "not a url"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "file:///etc/passwd"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ({"events": ["MODEL_VERSION_CREATED"]}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {"events": ["NO_SUCH_EVENT"], "http_url_spec": {"url": "http://127.0.0.1/"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"events": [], "http_url_spec": {"url": "http://127.0.0.1/"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "events": ["MODEL_VERSION_CREATED"],
                "http_url_spec": {"url": "http://127.0.0.1/"},
                "status": "ON",
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "events": ["MODEL_VERSION_CREATED"],
                "http_url_spec": {"url": "http://127.0.0.1/", "enable_ssl_verification": "no"},
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"events": ["MODEL_VERSION_CREATED"], "job_spec": {"job_id": "1", "access_token": "t"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "events": ["REGISTERED_MODEL_CREATED"],
                "http_url_spec": {"url": "http://127.0.0.1/"},
                "model_name": "wh-model",
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "events": ["MODEL_VERSION_CREATED"],
                "http_url_spec": {"url": "http://127.0.0.1/"},
                "model_name": "no-such-model",
            },
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ],
)
def test_webhook_create_bad_input(
    admin: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    assert_error(admin.post(WH + "/create", json=body), status, code)


def test_webhook_other_bad_input(
    server: Server, admin: httpx.Client, make_user: Callable[..., tuple[str, str]]
) -> None:
    assert_error(admin.patch(WH + "/update", json={"id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.patch(WH + "/update", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.delete(WH + "/delete", params={"id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(admin.post(WH + "/test", json={"id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        admin.get(WH + "/list", params={"max_results": "0"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(admin.get(WH + "/list", params={"events": "NOPE"}), 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        WH + "/create",
        json={"events": ["COMMENT_CREATED"], "http_url_spec": {"url": "http://127.0.0.1:9/"}},
    )
    assert r.status_code == 200, r.text
    hook_id = r.json()["webhook"]["id"]
    assert "secret" not in r.json()["webhook"]["http_url_spec"]
    r = admin.post(WH + "/test", json={"id": hook_id, "event": "MODEL_VERSION_CREATED"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(WH + "/test", json={"id": hook_id, "event": "NOPE"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # Nothing listens there: the test call says so.
    assert_error(admin.post(WH + "/test", json={"id": hook_id}), 400, "BAD_REQUEST")
    r = admin.patch(WH + "/update", json={"id": hook_id, "http_url_spec": {"url": "gopher://x"}})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.patch(WH + "/update", json={"id": hook_id, "events": ["NOPE"]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.patch(WH + "/update", json={"id": hook_id, "status": "DISABLED"})
    assert r.status_code == 200 and r.json()["webhook"]["status"] == "DISABLED"
    r = admin.post(WH + "/test", json={"id": hook_id})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    admin.delete(WH + "/delete", params={"id": hook_id})
    _name, token = make_user("hooks")
    with server.client(token) as client:
        r = client.post(
            WH + "/create",
            json={"events": ["COMMENT_CREATED"], "http_url_spec": {"url": "http://127.0.0.1/"}},
        )
        assert_error(r, 403, "PERMISSION_DENIED")
