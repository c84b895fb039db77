"""``data.workspace``: a Workspace view bound to the execution's scope (activity side)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class TenantBackends:
    """One set-up Workspace backend per tenant, opened lazily in the worker process."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._by_tenant: dict[str, Any] = {}
        self._lock: asyncio.Lock | None = None
        self._root: Any = None

    async def get(self, tenant: str) -> Any:
        """The set-up backend of ``tenant`` (opened on first use)."""
        found = self._by_tenant.get(tenant)
        if found is not None:
            return found
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            found = self._by_tenant.get(tenant)
            if found is None:
                # Imported on first use: SQLAlchemy and the drivers load only in workers
                # whose chunks use the Workspace.
                from workspace import BaseWorkspace, open_workspace

                if self._root is None:
                    root = (
                        self._target
                        if isinstance(self._target, BaseWorkspace)
                        else open_workspace(self._target, tenant=tenant)
                    )
                    await root.setup()
                    self._root = root
                # Tenants share the root's connections where the backend supports it; a
                # ready instance without for_tenant keeps its own tenant.
                for_tenant = getattr(self._root, "for_tenant", None)
                found = for_tenant(tenant) if callable(for_tenant) else self._root
                self._by_tenant[tenant] = found
        return found


class ScopedWorkspace:
    """Async proxy: every call runs on ``backend.bound(**scope)`` of the execution's tenant.

    ``ingest``/``search``/``build_context``/``checkpoint`` get ``execution_id`` and
    ``flow`` merged into their scope, so a chunk stores a large result and keeps the ref.
    """

    def __init__(self, backends: TenantBackends, tenant: str, scope: dict[str, Any]) -> None:
        self._backends = backends
        self._tenant = tenant
        self.scope = dict(scope)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            backend = await self._backends.get(self._tenant)
            return await getattr(backend.bound(**self.scope), name)(*args, **kwargs)

        call.__name__ = name
        return call


def make_workspace_factory(target: Any) -> Callable[[Any], ScopedWorkspace]:
    """Return ``factory(data) -> ScopedWorkspace`` for the plugin's ``workspace=`` option."""
    backends = TenantBackends(target)

    def factory(data: Any) -> ScopedWorkspace:
        tenant = data.tenant
        return ScopedWorkspace(
            backends, tenant, {"execution_id": data.execution_id, "flow": data.flow_name}
        )

    return factory
