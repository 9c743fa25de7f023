"""Key loading errors of the audit verifier.

The verifier takes its keys only with their chain binding: the export of ``ketenbus audit keys``
or the party registry (:func:`broker.audit.signers.load_signers`). The old forms, a directory of
``<kid>.pem`` files or a JSON map of key id to key, are refused there: they say nothing about
which chain a key may sign, so with them any listed key (a party's own, another chain's) could
continue any chain.
"""

from __future__ import annotations


class KeyLoadError(ValueError):
    """A key file that cannot be used; the message names the file (and key id)."""
