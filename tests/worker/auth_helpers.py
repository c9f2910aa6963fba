"""Keys, keyrings and clients for ITSM_AUTH tests: a user signs with their own key, at the
test server's time (a time-skipping server's clock runs ahead of the machine's)."""

from __future__ import annotations

from temporalio.client import Client, Interceptor, OutboundInterceptor

from worker.auth import HEADER, Keyring, Signer, client_interceptor, generate_key_pem

USERS = ("alice", "bob", "carol", "grace")


def make_keys() -> dict[str, tuple[Signer, str]]:
    pairs = {user: generate_key_pem() for user in USERS}
    return {user: (Signer.from_pem(pem), public) for user, (pem, public) in pairs.items()}


def keyring(keys) -> Keyring:
    return Keyring({user: public for user, (_, public) in keys.items()})


def signed_client(env, signer: Signer | None, *extra) -> Client:
    """A raw client (the CLI would refuse much of what tests send through it)."""
    interceptors = [client_interceptor(signer, env.client.data_converter, clock=env.get_current_time)] if signer else []
    return Client(env.client.service_client, namespace=env.client.namespace,
                  data_converter=env.client.data_converter, interceptors=[*interceptors, *extra])


class Replaying(Interceptor):
    """Sends every update with the first credential it saw: a captured call, sent again."""

    def __init__(self) -> None:
        self.captured = None

    def intercept_client(self, next):
        outer = self

        class Outbound(OutboundInterceptor):
            async def start_workflow_update(self, input):
                if outer.captured is None:
                    outer.captured = input.headers[HEADER]
                input.headers = {**input.headers, HEADER: outer.captured}
                return await super().start_workflow_update(input)

        return Outbound(next)
