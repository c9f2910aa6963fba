"""One client factory for the CLI, the worker and the demo.

Connection settings come from temporalio's envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TLS variables and the profile file); we only add defaults."""

from __future__ import annotations

import os

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_TASK_QUEUE = "itsm"


def task_queue() -> str:
    return os.environ.get("ITSM_TASK_QUEUE", DEFAULT_TASK_QUEUE)


def connect_config() -> dict:
    from temporalio.envconfig import ClientConfig

    config = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", "default")
    return config


def data_converter():
    """Pydantic JSON, encrypted when ITSM_ENCRYPTION_KEY is set (worker/codec.py): payloads,
    and failures' messages and stack traces too (an error can quote what it failed on)."""
    from worker.codec import codec_from_env

    return encrypting_converter(codec_from_env())


def encrypting_converter(codec):
    import dataclasses

    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

    from worker.converter import data_converter as clear

    if codec is None:
        return clear()
    return dataclasses.replace(clear(), payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def failure_message(client, failure) -> str:
    """A failure's message as its author wrote it: with encryption on, the history holds
    "Encoded failure" and the real one inside its (encrypted) encoded attributes."""
    if not failure.HasField("encoded_attributes"):
        return failure.message
    from temporalio.api.failure.v1 import Failure

    copy = Failure()
    copy.CopyFrom(failure)
    try:
        decoded = await client.data_converter.decode_failure(copy)
        message = getattr(decoded, "message", None) or str(decoded)
    except Exception:
        message = failure.message
    if message == failure.message:  # no key (or the wrong one) on this side: say so
        return f"{failure.message} (encrypted; set ITSM_ENCRYPTION_KEY to read it)"
    return message


async def connect(channel: str | None = None, **overrides):
    """Connect with our data converter (and signing, when ITSM_AUTH_KEY names a key);
    `channel` names the front end people act through (the CLI's is `cli`; the worker's client
    names none). `overrides` win over the environment."""
    from temporalio.client import Client

    from worker.auth import Signer, client_interceptor

    converter = data_converter()
    config = {**connect_config(), **overrides}
    signer = Signer.from_env()
    if signer is not None:
        config["interceptors"] = [*config.get("interceptors", []), client_interceptor(signer, converter)]
    if channel is not None:
        from itsmflow.app.channel import channel_interceptor

        config["interceptors"] = [*config.get("interceptors", []), channel_interceptor(channel, converter)]
    return await Client.connect(**config, data_converter=converter)


async def register_search_attributes(client, namespace: str | None = None) -> list[str]:
    """Add the custom search attributes the server lacks; returns what was added.
    Start-dev's --search-attribute flag is ignored for an existing database file."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.search_attributes import SEARCH_ATTRIBUTES

    namespace = namespace or client.namespace
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        existing = set(listed.custom_attributes)
    except RPCError as err:  # the Java time-skipping test server only implements "add"
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    type_names = {"Keyword": "KEYWORD", "KeywordList": "KEYWORD_LIST", "Datetime": "DATETIME", "Bool": "BOOL"}
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{type_names[kind]}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
