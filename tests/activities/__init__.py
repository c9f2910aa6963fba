

def not_retried(error) -> bool:
    """The callers' retry policy (workflows.base.NOTIFY_OPTIONS) does not retry this error's type."""
    from workflows.base import NOTIFY_OPTIONS

    return error.type in NOTIFY_OPTIONS["retry_policy"].non_retryable_error_types
