"""Standard Webhooks signing (the specification's test vector) and the built-in
WebhookChannel against a real local HTTP receiver, checked with the gateway's verifier."""

from __future__ import annotations

import json

import pytest

from triggerflow_temporal import Notification, WebhookChannel
from triggerflow_temporal.plugin.notifications import WebhookDeliveryError
from triggerflow_temporal.plugin.webhook_signing import decode_secret, sign, signature_headers

from ._receiver import DedupConsumer, Receiver, new_secret

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py
# (test_sign_function): the specification's published vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_test_vector():
    key = decode_secret(VECTOR_SECRET)
    assert sign(key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_PAYLOAD) == VECTOR_SIGNATURE
    assert sign(key, VECTOR_ID, str(VECTOR_TIMESTAMP), VECTOR_PAYLOAD) == VECTOR_SIGNATURE
    headers = signature_headers(key, VECTOR_ID, VECTOR_PAYLOAD, now=VECTOR_TIMESTAMP + 0.9)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),  # integer seconds
        "webhook-signature": VECTOR_SIGNATURE,
    }
    # One changed byte of the body, id or time is another signature.
    assert sign(key, VECTOR_ID, VECTOR_TIMESTAMP, b'{"test": 2432232315}') != VECTOR_SIGNATURE
    assert sign(key, "msg_other", VECTOR_TIMESTAMP, VECTOR_PAYLOAD) != VECTOR_SIGNATURE
    assert sign(key, VECTOR_ID, VECTOR_TIMESTAMP + 1, VECTOR_PAYLOAD) != VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must be 'whsec_'"),
        ("whsec_not base64!", "not base64"),
        ("whsec_c2hvcnQ=", "at least 16"),
    ],
)
def test_malformed_secrets_are_refused_with_the_reason(secret, message):
    with pytest.raises(ValueError, match=message):
        decode_secret(secret, min_bytes=16)
    with pytest.raises(ValueError, match=message):
        WebhookChannel("ops", "http://127.0.0.1:9/hook", secret)


def test_webhook_channel_arguments_are_checked():
    secret, _ = new_secret()
    with pytest.raises(ValueError, match="absolute http"):
        WebhookChannel("ops", "ftp://example.com/hook", secret)
    with pytest.raises(ValueError, match="non-empty name"):
        WebhookChannel("", "http://127.0.0.1:9/hook", secret)
    with pytest.raises(ValueError, match="timeout"):
        WebhookChannel("ops", "http://127.0.0.1:9/hook", secret, timeout=0)
    channel = WebhookChannel("ops", "http://127.0.0.1:9/hook", secret)
    assert secret not in repr(channel) and secret[6:] not in repr(channel)


async def test_webhook_channel_posts_a_signed_body_the_gateway_verifies():
    secret, key = new_secret()
    consumer = DedupConsumer(key)
    receiver = Receiver(answer=consumer)
    url = await receiver.start()
    try:
        body = {
            "type": "interrupt.created",
            "execution_id": "exe-1",
            "flow": "refund",
            "tenant": "acme",
            "interrupt_id": "approve",
            "interrupt_type": "approval",
            "payload": {"amount": 12.5, "note": "café"},
            "assignees": ["alice"],
            "candidate_groups": [],
            "deadline": None,
            "links": {},
            "at": "2026-01-01T00:00:00.000Z",
        }
        notification = Notification(channel="ops", webhook_id="exe-1:approve:x:1", body=body)
        await WebhookChannel("ops", url, secret).send(notification)
    finally:
        await receiver.stop()
    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/hook" and request.status == 200
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "exe-1:approve:x:1"
    assert request.headers["webhook-timestamp"].isdigit()
    assert request.body == notification.to_json()
    assert json.loads(request.body) == body  # flat, no wrapper
    assert consumer.refused == []  # the gateway's verify() accepted the signature
    assert consumer.processed == [body]


async def test_a_non_2xx_answer_raises_and_a_forged_signature_is_refused():
    secret, _ = new_secret()
    _, other_key = new_secret()
    receiver = Receiver(answer=lambda request: 503)
    url = await receiver.start()
    try:
        notification = Notification(channel="ops", webhook_id="w-1", body={"type": "x"})
        with pytest.raises(WebhookDeliveryError, match="answered 503"):
            await WebhookChannel("ops", url, secret).send(notification)
    finally:
        await receiver.stop()
    # The same request does not verify with another key: the signature is the secret's.
    [request] = receiver.requests
    forged = DedupConsumer(other_key)
    assert await forged(request) == 401
    assert forged.processed == [] and "No webhook-signature verifies" in forged.refused[0]
