"""An agent's egress allowlist (Agent.egress_domains): what it may hold, what it lets through.

Entries are host names ("pypi.org") or a wildcard for the subdomains of one ("*.npmjs.org",
which does not admit "npmjs.org" itself). The sandbox's egress proxy matches with
`domain_allowed`; the forms and the API validate with `clean_egress_domains`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

MAX_EGRESS_DOMAINS = 50
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _valid_hostname(name: str) -> bool:
    if len(name) > 253:
        return False
    labels = name.split(".")
    # A bare IP address is not a domain: the allowlist names hosts, the proxy resolves them.
    if all(label.isdigit() for label in labels):
        return False
    return all(_LABEL.match(label) for label in labels)


def clean_egress_domains(value: object) -> list[str]:
    """The list normalized (lowercase, no trailing dot, no duplicates), or ValidationError."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple):
        raise ValidationError("egress_domains must be a list of host names.")
    if len(value) > MAX_EGRESS_DOMAINS:
        raise ValidationError(f"At most {MAX_EGRESS_DOMAINS} egress domains.")
    domains: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            raise ValidationError("egress_domains must be a list of host names.")
        name = entry.strip().lower().rstrip(".")
        bare = name[2:] if name.startswith("*.") else name
        if not bare or not _valid_hostname(bare):
            raise ValidationError(f"{entry!r} is not a host name (e.g. pypi.org or *.npmjs.org).")
        if name not in domains:
            domains.append(name)
    return domains


def domain_allowed(host: str, domains: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for domain in domains:
        if domain.startswith("*."):
            if host.endswith(domain[1:]) and len(host) > len(domain) - 1:
                return True
        elif host == domain:
            return True
    return False
