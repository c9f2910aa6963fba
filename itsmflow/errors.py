"""The error types every layer names, once: raised by validators, activities and the
worker as `ApplicationError(type=...)`, matched by the application layer and by the
activity options that decide, at the call, what is not worth retrying."""

from __future__ import annotations

REFUSED = "Refused"  # an update's validator (or the worker's bounds) refused it: nothing reached history
WRONG_STATE = "WrongState"  # refused for the run's state; a validator a step behind may pass a moment later
UNVERIFIED = "Unverified"  # ITSM_AUTH: the start's requester could not be verified; the run fails at once
UNKNOWN_ACTION = "UnknownAction"  # a catalog task names a fulfillment action the worker does not have
NOTIFICATION_REJECTED = "NotificationRejected"  # the mail server refused the message for good
WEBHOOK_REJECTED = "WebhookRejected"  # a refused destination, or a 4xx answer: sending again will not help
