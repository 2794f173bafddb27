"""Read any ppsguard document back into the model, whichever it is: dispatch on its `schema`.

For a store, a flow reader or a web desk that receives documents without knowing their kind:
`load_document(value)` takes parsed JSON, `read_document(text)` the JSON text. Each document's
own loader (see `report.documents`) validates it first; anything else is one InputError. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ppsguard.errors import InputError
from ppsguard.report.audit_document import load_audit
from ppsguard.report.documents import schema_name
from ppsguard.report.harden_document import load_plan
from ppsguard.report.policy_documents import load_explain, load_lint
from ppsguard.report.scan_document import load_scan
from ppsguard.report.sockets_document import load_inventory, load_socket

LOADERS: dict[str, Callable[[object], object]] = {
    "ppsguard.socket": load_socket,
    "ppsguard.inventory": load_inventory,
    "ppsguard.scan": load_scan,
    "ppsguard.audit": load_audit,
    "ppsguard.lint": load_lint,
    "ppsguard.explain": load_explain,
    "ppsguard.harden-plan": load_plan,
}


def load_document(value: object) -> object:
    """The model value of any ppsguard document (a ScanResult, an AuditReport, ...)."""
    return LOADERS[schema_name(value)](value)


def read_document(text: str | bytes) -> object:
    """`load_document` of JSON text; text that is not JSON is an InputError naming the place."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    return load_document(value)
