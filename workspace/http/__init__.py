"""HTTP layer: the Workspace contract over HTTP.

* ``wire``: request and response bodies (pydantic) and routes, used by both sides.
* ``service``: the FastAPI application (``python -m workspace serve``), serving a storage backend.
* ``guard``: bearer tokens and the ASGI middleware that checks every request before parsing it.
* ``client``: :class:`~workspace.http.client.WorkspaceClient`, the contract implemented by calls.

This layer sits on top of ``workspace.storage`` (the service serves a storage backend) and the
contract layer; nothing below imports it.
"""
