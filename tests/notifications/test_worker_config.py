"""``triggerflow-temporal worker --config FILE``: the worker's ``notifications`` and ``links``
of the file the gateway reads too; every mistake names the key and the fix."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest

from triggerflow_temporal import ApprovalLinks, WebhookChannel
from triggerflow_temporal.cli.main import run_command
from triggerflow_temporal.cli.notify_config import worker_notifications
from triggerflow_temporal.gateway import GatewayConfigError, load_config
from triggerflow_temporal.gateway._config_types import CONFIG_ENV
from triggerflow_temporal.gateway._config_worker import parse_worker_config

OPS_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
LINK_SECRET = "link-" + secrets.token_urlsafe(40)
ENV = {"OPS_WEBHOOK_SECRET": OPS_SECRET, "GATEWAY_LINK_SECRET": LINK_SECRET}
_DELETE = object()


def document() -> dict[str, Any]:
    return {
        "auth": {"api_keys": [{"sha256": "0" * 64, "subject": "s", "tenant": "t"}]},
        "webhooks": [
            {
                "sender": "payments",
                "secret_env": "PAYMENTS_WEBHOOK_SECRET",  # the gateway's; unset here
                "tenant": "acme",
                "message": {"name": "invoice.paid", "correlation_key": "$.id"},
            }
        ],
        "notifications": [
            {
                "channel": "ops",
                "webhook_url": "http://127.0.0.1:9000/hook",
                "secret_env": "OPS_WEBHOOK_SECRET",
            },
            {
                "channel": "sales",
                "webhook_url": "https://hooks.example.test/sales",
                "secret_env": "OPS_WEBHOOK_SECRET",
                "timeout_seconds": 5,
            },
        ],
        "links": {
            "secret_env": "GATEWAY_LINK_SECRET",
            "base_url": "https://approvals.example.test/",
            "ttl_seconds": 3600,
        },
    }


def test_the_worker_reads_its_sections_and_ignores_the_gateways(tmp_path):
    path = tmp_path / "triggerflow.json"
    path.write_text(json.dumps(document()))
    notify = worker_notifications(str(path), ENV)
    assert [type(c) for c in notify.channels] == [WebhookChannel, WebhookChannel]
    ops, sales = notify.channels
    assert (ops.name, ops.url, ops.timeout) == ("ops", "http://127.0.0.1:9000/hook", 10.0)
    assert (sales.name, sales.timeout) == ("sales", 5.0)
    links = notify.approval_links
    assert isinstance(links, ApprovalLinks)
    assert links.base_url == "https://approvals.example.test" and links.ttl_seconds == 3600
    # The same variable the gateway reads names the file when --config is absent.
    from_env = worker_notifications(None, {**ENV, CONFIG_ENV: str(path)})
    assert [c.name for c in from_env.channels] == ["ops", "sales"]
    # Neither: no channels, no links (absent sections are fine).
    empty = worker_notifications(None, ENV)
    assert empty.channels == [] and empty.approval_links is None


def test_the_gateway_accepts_the_shared_file_without_the_workers_secrets(tmp_path):
    path = tmp_path / "triggerflow.yaml"
    path.write_text(json.dumps(document()))  # YAML is a superset of JSON
    gateway_env = {
        "PAYMENTS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "GATEWAY_LINK_SECRET": LINK_SECRET,
    }
    config = load_config(str(path), env=gateway_env)
    assert config.links is not None and config.links.ttl_seconds == 3600
    assert set(config.webhooks) == {"payments"}


def _mutations() -> list[tuple[Any, dict[str, str], str]]:
    def change(path: str, value: Any):
        def apply(doc: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node: Any = doc
            for part in parents:
                node = node[int(part)] if part.isdigit() else node[part]
            if value is _DELETE:
                del node[last]
            else:
                node[int(last) if last.isdigit() else last] = value

        return apply

    example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    short = "whsec_" + base64.b64encode(b"short").decode()
    return [
        (change("notifications.0.secret_env", "NOT_SET_ANYWHERE"), {},
         r"notifications\[0\]\.secret_env: environment variable NOT_SET_ANYWHERE is not set"),
        (None, {"OPS_WEBHOOK_SECRET": example}, r"notifications\[0\]\.secret_env.*example"),
        (None, {"OPS_WEBHOOK_SECRET": "change-me"}, r"notifications\[0\]\.secret_env.*example"),
        (None, {"OPS_WEBHOOK_SECRET": short}, r"notifications\[0\]\.secret_env.*at least 16"),
        (None, {"OPS_WEBHOOK_SECRET": "s3cr3t-but-not-whsec"}, r"must be 'whsec_'"),
        (None, {"OPS_WEBHOOK_SECRET": f"{OPS_SECRET} {OPS_SECRET}"}, "several secrets"),
        (change("notifications.0.webhook_url", "127.0.0.1:9000/hook"), {},
         r"notifications\[0\]\.webhook_url must be an absolute http\(s\) URL"),
        (change("notifications.1.channel", "ops"), {},
         r"notifications\[1\]\.channel 'ops' appears twice"),
        (change("notifications.0.channel", "two words"), {}, r"notifications\[0\]\.channel"),
        (change("notifications.0.channel", _DELETE), {}, r"notifications\[0\]\.channel"),
        (change("notifications.0.hook", "x"), {}, r"notifications\[0\] has unknown key"),
        (change("notifications.1.timeout_seconds", 0), {}, r"timeout_seconds must be"),
        (change("notifications", {"channel": "ops"}), {}, "notifications must be a list"),
        (change("links.ttl_seconds", -5), {}, r"links\.ttl_seconds must be a positive"),
        (change("links.base_url", "approvals.example.test"), {}, r"links\.base_url"),
        (None, {"GATEWAY_LINK_SECRET": "too-short"}, r"links\.secret_env.*at least 32"),
        (change("notifs", []), {}, r"Unknown top-level key\(s\) \['notifs'\]"),
    ]  # fmt: skip


@pytest.mark.parametrize(("mutate", "env", "message"), _mutations())
def test_mistakes_name_the_key_and_the_fix(mutate, env, message):
    doc = document()
    if mutate is not None:
        mutate(doc)
    with pytest.raises(GatewayConfigError, match=message):
        parse_worker_config(doc, env={**ENV, **env})


def test_the_worker_command_refuses_a_bad_config_before_connecting(tmp_path, capsys):
    doc = document()
    doc["notifications"][0]["webhook_url"] = "ftp://nowhere"
    path = tmp_path / "triggerflow.json"
    path.write_text(json.dumps(doc))
    argv = ["worker", "triggerflow_temporal.examples.approval:refund_flow", "--config", str(path)]
    # An address nothing listens on: the config is refused before any connection.
    code = run_command([*argv, "--address", "127.0.0.1:9"], ENV)
    err = capsys.readouterr().err
    assert code == 2
    assert "notifications[0].webhook_url must be an absolute http(s) URL" in err
    assert "Traceback" not in err
    missing = run_command(
        ["worker", "triggerflow_temporal.examples.approval:refund_flow", "--config",
         str(tmp_path / "absent.yaml"), "--address", "127.0.0.1:9"],
        ENV,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert missing == 2 and "Cannot read the config file" in err and "--config FILE" in err
