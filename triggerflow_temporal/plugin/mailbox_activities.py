"""The mailbox's activities (worker side): register a waiting pause, resume an interrupt.

Both talk to other workflows through the worker's own client (``activity.client()``), and
both are idempotent: a registration is a set add at the mailbox, and a resume carries
``resume_request_id="message:<message id>"``, so a retry after a lost answer resumes once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from ..spec.mailbox import (
    MAILBOX_WORKFLOW,
    REGISTER_ACTIVITY,
    REGISTER_UPDATE,
    RESUME_ACTIVITY,
    MailboxInput,
    RegisterOrder,
    ResumeOrder,
    Waiter,
    mailbox_id,
)
from ..spec.wire import UPDATE_CONTINUE_WITH, ContinueRequest

# Refusals that do not heal on retry: the interrupt is not waiting (any more), the actor
# may not resume it, the value does not fit its schema, the execution is gone.
_FINAL_RPC = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


@activity.defn(name=RESUME_ACTIVITY)
async def resume_interrupt(order: ResumeOrder) -> bool:
    """Resume one interrupt with a message; False when the interrupt refuses it.

    Waits until the execution has accepted the resume (its validator passed), not until
    the resumed chain is done.
    """
    handle = activity.client().get_workflow_handle(order.execution_id)
    try:
        await handle.start_update(
            UPDATE_CONTINUE_WITH,
            ContinueRequest(
                interrupt_id=order.interrupt_id,
                value=order.value,
                resume_request_id=f"message:{order.message_id}",
                actor=order.actor,
            ),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
    except WorkflowUpdateFailedError:
        return False  # refused by the validator: not waiting, not allowed, bad value
    except RPCError as error:
        if error.status in _FINAL_RPC or "already completed" in str(error):
            return False
        raise
    return True


@activity.defn(name=REGISTER_ACTIVITY)
async def register_waiter(order: RegisterOrder) -> None:
    """Register a waiting interrupt at its mailbox (started if it does not run)."""
    client = activity.client()
    operation = WithStartWorkflowOperation(
        MAILBOX_WORKFLOW,
        MailboxInput(tenant=order.tenant, name=order.name, key=order.key),
        id=mailbox_id(order.tenant, order.name, order.key),
        task_queue=order.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        execution_timeout=None,
        run_timeout=None,
        task_timeout=timedelta(seconds=10),
    )
    await client.execute_update_with_start_workflow(
        REGISTER_UPDATE,
        Waiter(execution_id=order.execution_id, interrupt_id=order.interrupt_id),
        start_workflow_operation=operation,
        result_type=dict,
    )


MAILBOX_ACTIVITIES = (resume_interrupt, register_waiter)
