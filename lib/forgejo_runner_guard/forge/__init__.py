"""What the forge says: the network clients that ask the forge itself.

    connection  one connection to one address of the forge: TCP within a
                deadline, TLS with the forge's name as SNI and as the name
                the certificate must be for, and the one-phrase reasons of
                their failures (shared with pins/probe.py)
    ping        the forge's unauthenticated Actions Ping RPC, asked along
                the path a restarted runner would take; PingResult and
                ForgeWord, the values decide() takes; classify() (pure)

These modules and pins/probe.py are the only network clients of the
package.  Importing them is cheap: socket, ssl and http.client are
imported only when a connection is made (the boot unit's plain reconcile
run never loads them).
"""
