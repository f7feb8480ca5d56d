"""How messages read as an agent's input: the prompt of a run, or a turn written mid-run."""

from __future__ import annotations

from collections.abc import Sequence

from apps.threads.models import Delivery


def prompt_from_deliveries(deliveries: Sequence[Delivery]) -> str:
    """Each message with who wrote it and where (message, thread and authors loaded)."""
    parts = []
    for delivery in deliveries:
        message = delivery.message
        if message.author_agent_id and message.author_agent:
            author = f"@{message.author_agent.handle}"
        elif message.author_user_id and message.author_user:
            author = message.author_user.get_username()
        else:
            author = "ozweb"
        parts.append(f"{author} wrote in {message.thread.label}:\n{message.body}")
    return "\n\n".join(parts)
