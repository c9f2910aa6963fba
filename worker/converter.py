"""Our payload converter: temporalio's pydantic JSON converter, built on first use.

The SDK makes payload converters it never uses. A workflow activation's decode and encode
each build a `DataConverter` (`_CommandAwareDataConverter.create` in temporalio 1.35), whose
`__post_init__` constructs a fresh payload converter that the codec pass never calls: with
`PydanticPayloadConverter` that is a `SchemaSerializer` and a TypeAdapter cache, twice per
activation, about 3% of a busy worker's Python CPU (py-spy on `bench.throughput`). Built
on first use instead, those cost an empty object. Payloads are byte for byte the same
(tests/worker/test_converter.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter


class LazyPydanticPayloadConverter(PydanticPayloadConverter):
    """`PydanticPayloadConverter`, whose encoding converters are made when first asked for."""

    def __init__(self) -> None:  # noqa: D107 (nothing is built until used)
        pass

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not set yet: the first use of the converter builds it whole.
        if name != "converters":
            raise AttributeError(name)
        PydanticPayloadConverter.__init__(self)
        return self.converters


def lazy(converter: DataConverter) -> DataConverter:
    """`converter` with the payload converter built on first use."""
    return dataclasses.replace(converter, payload_converter_class=LazyPydanticPayloadConverter)


def data_converter() -> DataConverter:
    """Pydantic JSON, in clear (worker/connect.py adds the codec when there is a key)."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    return lazy(pydantic_data_converter)
