"""Quarterly access recertification, an itsmflow process from outside the project: every grant
the CMDB records (a VPN or database grant a request item's automated task made) is attested by
the grantee's manager, kept or revoked (a revocation is written back to the CMDB); attestations
still missing at the deadline are escalated to the manager's manager, and the review closes
with a report of what was kept, revoked and left unattested.

`access_review.process` declares it (light: no temporalio); `models` holds its inputs and
status, `workflow` the durable process, `activities` what it registers on the worker, and
`templates` its notifications."""
