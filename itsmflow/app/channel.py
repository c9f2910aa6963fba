"""Through which channel a person acted (`cli`, later `api`, `link`, `chat`,
`integration:<name>`): a header on every start, update and signal a front end sends, kept in
history with the call, so the audit trail shows it beside the actor."""

from __future__ import annotations

import re

CHANNEL_HEADER = "itsm-channel"
CHANNEL = re.compile(r"^(cli|api|link|chat|integration:[a-z0-9][a-z0-9_.-]{0,62})$")


def channel_interceptor(channel: str, converter):
    """A client interceptor naming `channel` on every start, update and signal."""
    from temporalio.client import Interceptor, OutboundInterceptor

    if not CHANNEL.match(channel):
        raise ValueError(f"channel {channel!r} must be cli, api, link, chat or integration:<name>")

    def named(headers):
        return {**(headers or {}), CHANNEL_HEADER: converter.payload_converter.to_payloads([channel])[0]}

    class Outbound(OutboundInterceptor):
        async def start_workflow(self, input):
            input.headers = named(input.headers)
            return await super().start_workflow(input)

        async def start_workflow_update(self, input):
            input.headers = named(input.headers)
            return await super().start_workflow_update(input)

        async def signal_workflow(self, input):
            input.headers = named(input.headers)
            return await super().signal_workflow(input)

        async def start_update_with_start_workflow(self, input):
            input.start_workflow_input.headers = named(input.start_workflow_input.headers)
            input.update_workflow_input.headers = named(input.update_workflow_input.headers)
            return await super().start_update_with_start_workflow(input)

    class ChannelInterceptor(Interceptor):
        def intercept_client(self, next):
            return Outbound(next)

    return ChannelInterceptor()


def channel_of(*holders) -> str:
    """The channel a history event's call named ("" when none did: the worker, or a client
    from before channels were recorded)."""
    import json

    for holder in holders:
        header = getattr(holder, "header", None)
        if header is not None and CHANNEL_HEADER in header.fields:
            try:
                value = json.loads(header.fields[CHANNEL_HEADER].data)
            except ValueError:
                return "?"
            return value if isinstance(value, str) and CHANNEL.match(value) else "?"
    return ""
