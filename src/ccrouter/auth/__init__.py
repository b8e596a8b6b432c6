"""A team's gateway (issue 14): who a request is and what it may do.

``roles`` (roles and the ``Principal``), ``keys`` (managed keys and audit records as data),
``authenticator`` (from a presented credential to its principal), ``directory`` (the in-memory
replica of the store's keys every instance looks keys up in), ``manage`` and ``specs`` (creating,
rotating, revoking keys, with their audit records; the input they take), ``jwt`` and ``jwks``
(single sign-on tokens and their key sets), ``limits`` (per key, user and team limits and allowed
routes) and ``audit`` (the audit trail's writer). The HTTP side is ``ccrouter.api.auth``.
"""
