"""What a request asks to do, in registry:2's terms: ``(type, name, action)`` items and the challenge's scope.

The map is registry:2's (``registry/handlers/app.go``): GET/HEAD need ``pull``; POST/PUT/PATCH need ``pull`` and
``push``; DELETE needs ``delete``; a cross-repository mount also needs ``pull`` on its ``from`` repository; the
catalog needs ``registry:catalog:*``; ``/v2/`` itself needs nothing but valid credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    action: str

    def detail(self) -> dict[str, str]:
        """The JSON form registry:2 puts in an UNAUTHORIZED error's ``detail``."""
        return {"Type": self.type, "Class": "", "Name": self.name, "Action": self.action}


CATALOG = (Access("registry", "catalog", "*"),)


def for_repository(method: str, name: str, mount_from: str | None = None) -> tuple[Access, ...]:
    """The access items a request with `method` on repository `name` needs (registry:2's action map)."""
    if method in ("GET", "HEAD"):
        actions: tuple[str, ...] = ("pull",)
    elif method in ("POST", "PUT", "PATCH"):
        actions = ("pull", "push")
    elif method == "DELETE":
        actions = ("delete",)
    else:
        actions = ()
    items = tuple(Access("repository", name, action) for action in actions)
    if mount_from:
        items += (Access("repository", mount_from, "pull"),)
    return items


def scope_param(items: Iterable[Access]) -> str:
    """``repository:a/b:pull,push repository:c:pull``: one entry per resource, actions in first-asked order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in items:
        actions = grouped.setdefault((item.type, item.name), [])
        if item.action not in actions:
            actions.append(item.action)
    return " ".join(f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in grouped.items())
