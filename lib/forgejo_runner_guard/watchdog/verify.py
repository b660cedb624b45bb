"""Ask the forge before restarting a runner (verify = ping, the default).

A restart helps a runner whose own connection is stuck; it cannot help
while the forge, or the path to it, is down: then every runner logs
failed fetches and a restart only kills the jobs in flight.  So, for
each runner whose log says wedged (decide.wedged_by_log()), or the
forge's REST view (forgeview.py, issue 20):

  where  its backend's begin_launch(): its command line, working
         directory, mounts and --add-host entries (docker
         inspect; systemctl show for a unit), all side by side
  who    registration.identity(): its forge's URL from its .runner or its
         config's server.connections, and runner.insecure; `forge = URL`
         in its section names the URL instead
  path   the address a restarted runner would connect to: a container's
         --add-host entry for the forge's name; without one (host network,
         a network of its own, a systemd unit) the host's resolver as it is
         now, since a restarted host-network container gets a fresh copy
         of the host's /etc/hosts
  ask    forge.ping.ask() for each URL, every runner side by side, one
         Ping per distinct URL, address and TLS setting (a fleet-wide
         outage costs one Ping), each within the runner's ping_timeout;
         the run waits for them at most the longest ping_timeout + GRACE

-> Check.forge, a forge.ping.ForgeWord: what it said, or that it was not
asked and why (no forge URL found, or a name only the container's own
network resolves: one warning line, and the log alone decides).  A
runner whose log does not say wedged, nor the forge's own view
(forgeview.py), is never asked.

The forge is asked before the job guard lists the jobs (command.py):
the job guard stays the last look before a restart, so a job that starts
while a Ping waits (up to ping_timeout) is still seen, and a runner whose
forge does not answer is not restarted whatever its jobs, so it needs no
job list at all.  The job guard and the budget rules are unchanged.
"""

import threading
import time

from ..forge import ping
from ..report import GuardError
from ..runners import backends, registration

GRACE = 2.0  # seconds the run waits beyond the longest ping_timeout
MAX_HOSTS = 1024 * 1024  # bytes of a container's hosts file read


def ask(todo, timeout, reporter):
    """Set c.forge for each check of `todo`, the runners whose log says
    wedged (decide.wedged_by_log()), or whose forge's view does
    (forgeview.py), and whose verify is ping.  timeout: for each
    begin_launch() call (docker_timeout)."""
    launched = backends.launches(todo, timeout, _launch)
    plans = {c.name: _plan(c, launched[c.name]) for c in todo}
    answers = _ping_all([a for asks, _, _ in plans.values() if asks for a in asks])
    for c in todo:
        asks, why, own = plans[c.name]
        word = ping.not_asked(why) if asks is None else _word(tuple(answers[a] for a in asks), own)
        c.forge = word
        if not word.asked:
            reporter.warning("%s: forge not asked: %s: the log alone decides (forge = URL in "
                             "[runner %s] names it)" % (c.name, word.why, c.name))
        for p in word.pings:
            reporter.debug("%s: %s (%s)" % (c.name, p.phrase(), p.url))


def _word(pings, own_network):
    """The pings -> ForgeWord.  A name the host's resolver does not know is
    no outage for a container with a network of its own: Docker's DNS
    resolves its network's names (a forge in the same compose project,
    `http://forgejo:3000`), so the forge was not really asked."""
    unknown = [p for p in pings if p.cls == ping.DNS and p.via == ping.VIA_RESOLVER]
    if own_network and unknown:
        host = ping.parse_url(unknown[0].url).host
        return ping.ForgeWord(False, pings, "%s does not resolve on the host (the container's "
                              "own network may resolve it: Docker's DNS)" % host)
    return ping.ForgeWord(True, pings)


def _launch(call):
    """The call's registration.Launch, or the GuardError that tells why not."""
    if isinstance(call, GuardError):
        return call
    try:
        return call.result()
    except GuardError as exc:
        return exc


def _plan(c, launch):
    """-> ([(url, addresses, via, insecure, ca_file, ping_timeout)], "",
    own network) or (None, why the forge cannot be asked, own network)."""
    found = None
    if isinstance(launch, GuardError):
        if not c.cfg.forge:
            return None, "cannot tell where its files are: %s" % launch, False
        launch = None
    else:
        found = registration.identity(launch)
    own = launch is not None and launch.network not in ("", "host")
    urls = (c.cfg.forge,) if c.cfg.forge else found.urls
    if not urls:
        return None, found.reason, own
    insecure = bool(found is not None and found.insecure)
    asks = []
    for url in urls:
        try:
            target = ping.parse_url(url)
        except ValueError as exc:
            return None, "its forge's URL (%s): %s" % (found.source if found else "forge =",
                                                       exc), own
        addresses, via = _path(target.host, launch)
        asks.append((url, addresses, via, insecure, c.cfg.forge_ca_file, c.cfg.ping_timeout))
    return asks, "", own


def _path(host, launch):
    """The addresses a restarted runner would connect to for `host`, and
    how they were found; () means: the host's resolver (ping.ask).

    A container's --add-host entry for the name wins, whatever its
    network: Docker builds its hosts file from them at every start (for a
    host-network container too, instead of copying the host's: Docker
    20.10, Debian 12's docker.io, sets the origin hosts path only for a
    host-network container without ExtraHosts).  Without one the runner
    asks the host's resolver: a host-network container through a fresh
    copy of the host's /etc/hosts and its DNS, a container with its own
    network through Docker's DNS, which forwards to the host's; a unit
    directly."""
    if launch is None:
        return (), ping.VIA_RESOLVER
    addresses = registration.add_host_addresses(host, launch.extra_hosts, _hosts_text(launch))
    if addresses:
        return addresses, ping.VIA_ADD_HOST
    return (), ping.VIA_RESOLVER


def _hosts_text(launch):
    """The container's own hosts file, only when an --add-host entry is
    `host-gateway` (Docker writes its address there); '' otherwise."""
    if not launch.hosts_path or not any("host-gateway" in e for e in launch.extra_hosts):
        return ""
    try:
        with open(launch.hosts_path, encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_HOSTS)
    except OSError:
        return ""


def _ping_all(asks):
    """Each distinct ask in a thread of its own -> {ask: PingResult}; one
    that has not ended by the longest ping_timeout + GRACE is a timeout."""
    results, threads = {}, []
    for a in dict.fromkeys(asks):
        thread = threading.Thread(target=_one, args=(a, results), daemon=True,
                                  name="ping-" + a[0])
        thread.start()
        threads.append((a, thread))
    deadline = time.monotonic() + max([a[5] for a in asks] or [0.0]) + GRACE
    final = {}
    for a, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        final[a] = results.get(a) or ping.PingResult(  # a resolver that hangs: the thread is left
            a[0], a[1][0] if a[1] else "", a[2], cls=ping.TIMEOUT,
            reason="no answer within %gs (ping_timeout)" % a[5])
    return final


def _one(a, results):
    url, addresses, via, insecure, ca_file, timeout = a
    try:
        results[a] = ping.ask(url, addresses, via, timeout, insecure, ca_file)
    except ValueError as exc:  # a CA file that cannot be used (checked at the start)
        results[a] = ping.PingResult(url, "", via, cls=ping.TLS, reason=str(exc))
