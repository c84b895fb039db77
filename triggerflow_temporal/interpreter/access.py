"""Who may resume an interrupt (workflow side, pure): ``pause_for`` access rules.

``pause_for(assignees=[subjects], candidate_groups=[groups], forbid_initiator=True)`` limits
who may resume; the ``continue_with`` update's validator checks the actor the caller passes,
so a refused resume never reaches history. The gateway passes the verified principal
``{subject, tenant, groups, method}``; a Python client inside the trust boundary may pass
``actor=`` itself (a string is a subject) or none at all, which is trusted, as every call
of a Temporal client is.
"""

from __future__ import annotations

from typing import Any

ACCESS_KEY = "access"
"""The interrupt record's key for its access rules (present only when a rule was given)."""

# The TriggerFlowAssignees value of an interrupt anyone of the tenant may resume (no
# assignees, no candidate groups): "assigned to me" lists it for every subject.
ANYONE = "*"

# Who resumed when the caller named nobody: a Temporal client inside the trust boundary.
TRUSTED_CLIENT = "temporal_client"


def normalize_actor(actor: Any) -> dict[str, Any] | None:
    """``actor`` as a principal ``{subject, tenant, groups, method}``, or None for none.

    A string is a subject claimed by a trusted client (method ``"claimed"``).
    """
    if actor is None:
        return None
    if isinstance(actor, str):
        return {"subject": actor, "tenant": None, "groups": [], "method": "claimed"}
    if isinstance(actor, dict):
        groups = actor.get("groups") or []
        return {
            "subject": actor.get("subject") if isinstance(actor.get("subject"), str) else None,
            "tenant": actor.get("tenant") if isinstance(actor.get("tenant"), str) else None,
            "groups": sorted({g for g in groups if isinstance(g, str)})
            if isinstance(groups, list)
            else [],
            "method": actor.get("method") if isinstance(actor.get("method"), str) else "claimed",
        }
    return None


def actor_problem(actor: Any) -> str | None:
    """Why ``actor`` is not a valid actor (None, a subject string or a principal dict)."""
    if actor is None or (isinstance(actor, str) and actor):
        return None
    if isinstance(actor, dict) and isinstance(actor.get("subject"), str) and actor["subject"]:
        groups = actor.get("groups", [])
        if groups is None or (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            return None
    return (
        f"actor must be a subject string or {{'subject': str, 'groups': [str], 'method': str, "
        f"'tenant': str}}, got {actor!r:.120}."
    )


def access_rules(request: dict[str, Any]) -> dict[str, Any] | None:
    """The access rules of a normalized pause request, or None when it sets none."""
    rules = {
        "assignees": list(request.get("assignees") or []),
        "candidate_groups": list(request.get("candidate_groups") or []),
        "forbid_initiator": bool(request.get("forbid_initiator")),
        "correlation": request.get("correlation"),
    }
    if not (
        rules["assignees"]
        or rules["candidate_groups"]
        or rules["forbid_initiator"]
        or rules["correlation"]
    ):
        return None
    return rules


def access_problem(record: dict[str, Any], actor: Any, initiator: Any) -> str | None:
    """Why ``actor`` may not resume ``record`` (None: it may).

    No actor is a trusted client and may. The initiator rule wins over being an assignee
    or in a candidate group (gateway.md).
    """
    rules = record.get(ACCESS_KEY)
    principal = normalize_actor(actor)
    if not rules or principal is None:
        return None
    subject = principal["subject"]
    starter = normalize_actor(initiator)
    if rules.get("forbid_initiator") and starter is not None and starter["subject"] == subject:
        return (
            f"{subject!r} started this execution and interrupt {record['id']!r} forbids its "
            "initiator from resuming it (forbid_initiator=True); another approver must."
        )
    assignees = rules.get("assignees") or []
    groups = rules.get("candidate_groups") or []
    if not assignees and not groups:
        return None
    if subject in assignees or set(principal["groups"]) & set(groups):
        return None
    return (
        f"{subject!r} may not resume interrupt {record['id']!r}: it is assigned to "
        f"{assignees or 'nobody by name'} and the groups {groups or 'none'}."
    )


def resumed_by_principal(actor: Any, at: float) -> dict[str, Any]:
    """Who resumed and when: ``{subject, tenant, groups, method, at}``.

    Recorded on every resume as the record's ``resumed_by_principal``; ``resumed_by`` keeps
    Agently's meaning (the actor's subject, a string).
    """
    principal = normalize_actor(actor) or {
        "subject": None,
        "tenant": None,
        "groups": [],
        "method": TRUSTED_CLIENT,
    }
    return {**principal, "at": at}
