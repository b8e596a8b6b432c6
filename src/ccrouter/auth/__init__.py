"""A team's gateway (issue 14): who a request is and what it may do.

``roles`` (roles and the ``Principal``), ``keys`` (managed keys and audit records as data),
``directory`` (the in-memory replica of the store's keys every instance looks keys up in),
``manage`` (creating, rotating, revoking keys, with their audit records), ``jwt`` (single sign-on
tokens), ``limits`` (per key, user and team limits), ``audit`` (the audit trail's writer) and
``middleware`` (authentication and roles on every request).
"""
