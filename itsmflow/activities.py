"""Activities of the kit that a process may register and call, beside the built-ins'
(notifications through `ProcessWorkflow.notify`, CMDB calls through `ProcessWorkflow.cmdb`):

- `GrantActivities(db)`: the access grants the CMDB records (what a request item's automated
  task granted: VPN, database access), `list_grants(GrantQuery) -> list[Grant]` of those in
  force and `revoke_grant(RevokeInput) -> bool`, idempotent by the revocation's key;
- `WorkerContext`: what a declaration's `activities` function is given by the worker (the CMDB
  database, the notification channel, the organisation, a Temporal client signing as the
  worker), to build its activity instances:

      def activities(context: WorkerContext) -> list:
          grants = GrantActivities(context.db)
          return [grants.list_grants, grants.revoke_grant]

Workflow code imports this module inside `workflow.unsafe.imports_passed_through()` and calls
the methods by reference: `await self.cmdb(GrantActivities.list_grants, GrantQuery(...), ...)`."""

from activities.grants import GrantActivities
from activities.models import GRANT_ACTIONS, Grant, GrantQuery, RevokeInput
from itsmflow.process import WorkerContext

__all__ = ["GRANT_ACTIONS", "Grant", "GrantActivities", "GrantQuery", "RevokeInput", "WorkerContext"]
