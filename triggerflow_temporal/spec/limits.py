"""Every size and count limit of the runtime, in one place (a contract, no behaviour).

What Temporal carries (payloads, the continue-as-new carry) and what a run keeps of its
history (windows of finished records, the stream) are bounded so an execution can live for
months. The Workspace's own limits are in ``workspace``.
"""

from __future__ import annotations

# Temporal refuses payloads over 2 MiB (the SDK's TMPRL1103 error limit; the server's blob
# limit is the same by default), and a refused workflow-task completion is retried forever,
# wedging the execution. Values this runtime carries in history are held under 1.5 MiB so
# the envelope around them (signal, ids, the rest of the chunk input) still fits.
MAX_PAYLOAD_BYTES = 1536 * 1024

# Finished interrupt records carried (newest first), by count and by JSON bytes.
MAX_RESOLVED_INTERRUPTS = 50
MAX_RESOLVED_INTERRUPT_BYTES = 256 * 1024
# Finished (inserted, expired) intervention records carried.
MAX_FINISHED_INTERVENTIONS = 50
MAX_FINISHED_INTERVENTION_BYTES = 128 * 1024
# Pending interventions an execution accepts (the intervene update refuses more).
MAX_PENDING_INTERVENTIONS = 500
# Rejected continue_with signals carried.
MAX_REJECTED_BYTES = 64 * 1024
# Runtime stream items carried.
MAX_STREAM_ITEMS = 1_000
MAX_STREAM_BYTES = 256 * 1024
# Chunk errors kept with skip_exceptions.
MAX_ERRORS = 100
# A resume value (continue_with, a resume_event emit) is kept several times until its chain
# has run: in the interrupt record (resume_value, response, the resume_request ledger), in
# the queued resume signal and its context, in the runtime stream. Capped so that all of it
# fits what a run can hand to the next (MAX_PAYLOAD_BYTES, 1.5 MiB).
MAX_RESUME_VALUE_BYTES = 128 * 1024
# Rejected signal-variant requests kept for inspection (oldest dropped first).
MAX_REJECTED_REQUESTS = 100
# Continue as new at this many events even if the server never suggests it (a server
# configured with a high suggestion threshold must not let one run reach its hard limit).
MAX_RUN_EVENTS = 9_000
# Local activities (local-activity chunks, inline yields) one run schedules, from runtime
# version 4. A chain of local activities keeps one workflow task open until the SDK's
# heartbeat (~8 s), and the history length the workflow sees only changes when a task
# starts: MAX_RUN_EVENTS alone let such a run go a heartbeat of markers past it (runs of
# ~10,000 events). Nor can it be estimated from that length: which local activity first
# sees a new task's length differs between the live run and a replay. The workflow's own
# count is the same in both; 8,000 markers leave 1,000 events to the rest of the run.
MAX_RUN_MARKERS = 8_000
# Suspended frames (chunks waiting for a chain they emitted) an execution may hold.
MAX_FRAMES = 5_000
# Finished roots whose outcome a caller may still ask for (``settle`` after a run change).
MAX_DONE_ROOTS = 200
# Bounded logs kept in workflow memory (and carried over continue-as-new).
MAX_SIGNAL_ATTEMPTS = 100

# execution.on() bindings one execution holds at once (each a record in its state, carried
# over continue-as-new and saved): off() one before binding more.
MAX_BINDINGS = 256
