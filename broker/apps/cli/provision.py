"""``ketenbus provision``: what the compose file's one-shot ``provision`` service makes before
Kafka starts (``docker/README.md``; issue 19 point 1, issue 21 point 2).

* the party registry and keys of the demo parties, with ``--routers N`` router instances each
  with a signing key and an audit chain of its own, as ``ketenbus up --routers N`` makes them;
* the router's pseudonym and key-store secrets, made once here so that instances starting at the
  same moment share them instead of racing to create them;
* a CA made here and one TLS client certificate per Kafka principal (``broker.apps.pki``): each
  party (its id as the common name), each router instance (common name ``router``: one party,
  one set of ACLs, its own key), ``ketenbus-admin`` (creates topics) and ``acl-admin`` (applies
  the ACLs; a Kafka super user), and the broker's server certificate;
* ``acls.sh``: exactly the commands ``ketenbus topics --acls`` prints for that registry, which
  the ``acl-init`` service runs against Kafka.

Provisioning again keeps the registry and keys and the TLS material (delete the volume to
start over).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ACL_ADMIN = "acl-admin"  # a super user in the compose file: the only one that writes ACLs
BROKER = "kafka"  # the broker's host name on the compose network and its certificate's CN
MOUNT = "/deployment"  # where the compose file mounts what this writes
MONITOR = "monitor"  # its certificate file; its principal is the router's


def tls_identities(router: str, instances: tuple[str, ...], parties: list[str]) -> dict[str, str]:
    """File name -> common name (the Kafka principal) of every client certificate."""
    from broker.apps.acls import ADMIN

    own = {i: router for i in instances} if instances else {router: router}
    own[MONITOR] = router  # the router operator's monitor reads what the router reads
    return {**own, **{p: p for p in parties}, ADMIN: ADMIN, ACL_ADMIN: ACL_ADMIN}


def client_config(name: str) -> str:
    """A Java client configuration (``--command-config``) for the certificate ``name``."""
    pem = f"{MOUNT}/pki/{name}.pem"
    return (
        "security.protocol=SSL\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={pem}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={MOUNT}/pki/ca.pem\n"
    )


def provision(
    out: Annotated[
        Path, typer.Option("--out", help="The folder the compose file mounts at /deployment.")
    ],
    routers: Annotated[
        int, typer.Option("--routers", min=1, max=16, help="Router instances side by side.")
    ] = 2,
    bootstrap: Annotated[
        str, typer.Option("--bootstrap", help="Kafka's address on the compose network.")
    ] = f"{BROKER}:9092",
) -> None:
    """Make the registry, keys, TLS identities and ACL script of a compose deployment."""
    from broker.apps.acls import acl_commands
    from broker.apps.deployment import create_local, router_instance_ids
    from broker.apps.pki import CA_FILE, issue_all
    from broker.apps.scenarios import demo
    from broker.audit.keystore import OWNER_SECRET_FILE
    from broker.policy import default_policy
    from broker.trust.pseudonym import load_or_create_secret

    instances = router_instance_ids(routers)
    dep = create_local(out, demo.PARTIES, router_instances=instances)
    router = dep.router_id
    dep.pseudonymiser(router)
    load_or_create_secret(dep.secrets_dir / OWNER_SECRET_FILE.format(writer=router))
    pki = out / "pki"
    if not (pki / CA_FILE).exists():
        parties = [p.id for p in dep.registry.parties if p.id != router]
        paths = issue_all(pki, tls_identities(router, instances, parties), {BROKER: [BROKER]})
        # the Kafka image runs as another user than ketenbus: its two files must be readable
        # to it (the volume is this host's only; docker/README.md, "one host")
        for name in (BROKER, ACL_ADMIN):
            paths[name].chmod(0o644)
        (pki / f"{ACL_ADMIN}.properties").write_text(client_config(ACL_ADMIN))
        (pki / f"{BROKER}.properties").write_text(client_config(BROKER))
    config = f"{MOUNT}/pki/{ACL_ADMIN}.properties"
    lines = acl_commands(dep.registry, default_policy(), bootstrap, config)
    (out / "acls.sh").write_text("#!/bin/sh\nset -e\n" + "\n".join(lines) + "\n")
    typer.echo(f"provisioned {out}: {len(instances) or 1} router(s), {len(lines)} ACL entries")
