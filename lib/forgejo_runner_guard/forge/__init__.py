"""What the forge says: the network clients that ask the forge itself.

    connection  one connection to one address of the forge: TCP within a
                deadline, TLS with the forge's name as SNI and as the name
                the certificate must be for, and the one-phrase reasons of
                their failures (shared with pins/probe.py)
    ping        the forge's unauthenticated Actions Ping RPC, asked along
                the path a restarted runner would take; PingResult and
                ForgeWord, the values decide() takes; classify() (pure)
    api         the forge's REST API, read-only, with an operator's token
                (issue 20): its version, the runner list and the waiting
                jobs; never a runner RPC
    view        PURE: those documents read as each forge writes them, the
                runner found in its list, the jobs it could take and when
                each was first seen waiting

These modules and pins/probe.py are the only network clients of the
package.  Importing them is cheap: socket, ssl and http.client are
imported only when a connection is made (the boot unit's plain reconcile
run never loads them).
"""
