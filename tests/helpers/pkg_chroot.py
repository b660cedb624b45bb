"""Debian bookworm chroots for the packaging tests, cached outside the clone.

Everything lives under CACHE (/var/cache/forgejo-runner-guard):

  bookworm-minbase-<key>.debs.tgz   `debootstrap --make-tarball`: the .debs
  bookworm-minbase-<key>.root.tar   that tarball unpacked (--unpack-tarball),
                                    apt sources = the host's Debian mirror,
                                    package lists fetched: the clean chroot
  bookworm-systemd-<key>.root.tar   the clean chroot + systemd and the
                                    package's dependencies, for booting
  bookworm-podman-<key>.root.tar    that + Debian's podman and catatonit
                                    (tests/package/test_podman_unit.py)
  apt-archives/                     apt's .deb cache, bind-mounted into every
                                    chroot so a .deb is fetched once

<key> hashes the host's Debian apt sources and CACHE_VERSION, so a change of
mirror or of the recipe builds new tarballs.  A cold cache takes about a
minute to fill; a warm one unpacks a root in seconds.

Commands run in the chroot through `unshare --mount --propagation private`:
/proc, /dev and the apt cache are mounted in a private mount namespace, so
nothing is left mounted on the host when the command ends, whatever happens.
The chroot's /etc/hosts is its own file; the host's is never touched.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import tempfile

CACHE = os.environ.get("FRG_CACHE_DIR", "/var/cache/forgejo-runner-guard")
CACHE_VERSION = "1"
SUITE = "bookworm"
APT_ARCHIVES = os.path.join(CACHE, "apt-archives")
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}
# What the systemd chroot has beyond minbase: systemd to boot, and the
# package's dependencies so that installing the .deb needs no download.
SYSTEMD_PACKAGES = ("systemd", "python3", "python3-sh", "python3-yaml")
# A Podman host: Debian 12's podman 4.3 (its postinst enables podman.socket)
# and catatonit for --init.
PODMAN_PACKAGES = ("podman", "catatonit")


# ------------------------------------------------------------ apt sources


def _deb822_stanzas(text):
    stanza = {}
    key = None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def host_debian_sources(etc="/etc/apt"):
    """[(uri, suite, components)] of the host's enabled Debian entries for
    SUITE (the main archive, -updates, -security), in file order."""
    entries = []
    files = []
    if os.path.exists(os.path.join(etc, "sources.list")):
        files.append(os.path.join(etc, "sources.list"))
    listd = os.path.join(etc, "sources.list.d")
    if os.path.isdir(listd):
        files += sorted(
            os.path.join(listd, f) for f in os.listdir(listd) if f.endswith((".list", ".sources"))
        )
    for path in files:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if path.endswith(".sources"):
            for st in _deb822_stanzas(text):
                if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                    continue
                for uri in st.get("uris", "").split():
                    for suite in st.get("suites", "").split():
                        entries.append((uri, suite, st.get("components", "main").split()))
        else:
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb":
                    entries.append((line[1], line[2], line[3:] or ["main"]))
    return [
        (uri.rstrip("/"), suite, comps)
        for uri, suite, comps in entries
        if re.fullmatch(SUITE + r"(-updates|-security)?", suite)
    ]


def mirror(sources):
    """The URI of the main archive among `sources` (for debootstrap)."""
    for uri, suite, _ in sources:
        if suite == SUITE:
            return uri
    raise AssertionError("the host has no apt source for Debian %s" % SUITE)


def sources_list(sources):
    return "".join("deb %s %s %s\n" % (uri, suite, " ".join(comps)) for uri, suite, comps in sources)


def cache_key(sources):
    digest = hashlib.sha256((CACHE_VERSION + "\n" + sources_list(sources)).encode())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------ running


def run(cmd, timeout=600, check=True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(
            "%s: exit %d\n--- stdout\n%s\n--- stderr\n%s"
            % (" ".join(map(shlex.quote, cmd)), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
        )
    return proc


def in_chroot(root, script, timeout=600, check=True, apt_cache=True, binds=()):
    """Run the bash `script` inside the chroot at `root` (as root, with a
    clean environment), with /proc, /dev and the apt cache mounted in a
    private mount namespace, and `binds` ((host path, path in the root))
    bind-mounted there too.  Returns CompletedProcess (text)."""
    mounts = [
        'mount -t proc proc "$R/proc"',
        'mount --rbind /dev "$R/dev"',
    ]
    for source, target in binds:
        mounts.append('mount --bind %s "$R"/%s' % (shlex.quote(source), shlex.quote(target.lstrip("/"))))
    if apt_cache:
        os.makedirs(os.path.join(APT_ARCHIVES, "partial"), exist_ok=True)
        mounts.append('mount --bind %s "$R/var/cache/apt/archives"' % shlex.quote(APT_ARCHIVES))
    env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in ENV.items())
    outer = "set -e; R=%s; %s; exec chroot \"$R\" /usr/bin/env -i %s /bin/bash -ec %s" % (
        shlex.quote(root),
        "; ".join(mounts),
        env,
        shlex.quote(script),
    )
    return run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", outer],
        timeout=timeout,
        check=check,
    )


# ------------------------------------------------------------ the cache


@contextlib.contextmanager
def _cache_lock():
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _save(root, tarball):
    tmp = tarball + ".tmp"
    run(["tar", "-C", root, "--numeric-owner", "-cpf", tmp, "."])
    os.replace(tmp, tarball)


def unpack(tarball, root):
    os.makedirs(root, exist_ok=True)
    run(["tar", "-C", root, "--numeric-owner", "-xpf", tarball])


def _scratch():
    return tempfile.mkdtemp(prefix="frg-chroot-", dir="/var/tmp")


def remove(root):
    # Nothing is mounted under it (mounts live in the commands' private
    # namespaces), so this cannot reach outside the root.
    subprocess.run(["rm", "-rf", "--one-file-system", root], check=False)


def base_tarball(sources):
    """The clean minbase root (cached), with apt sources and lists."""
    key = cache_key(sources)
    debs = os.path.join(CACHE, "%s-minbase-%s.debs.tgz" % (SUITE, key))
    tarball = os.path.join(CACHE, "%s-minbase-%s.root.tar" % (SUITE, key))
    with _cache_lock():
        if os.path.exists(tarball):
            return tarball
        work = _scratch()
        try:
            if not os.path.exists(debs):
                run(
                    [
                        "debootstrap", "--variant=minbase", "--make-tarball=" + debs + ".tmp",
                        SUITE, os.path.join(work, "make"), mirror(sources),
                    ],
                    timeout=900,
                )
                os.replace(debs + ".tmp", debs)
            root = os.path.join(work, "root")
            run(
                ["debootstrap", "--variant=minbase", "--unpack-tarball=" + debs, SUITE, root, mirror(sources)],
                timeout=900,
            )
            with open(os.path.join(root, "etc/apt/sources.list"), "w") as handle:
                handle.write(sources_list(sources))
            in_chroot(root, "apt-get update -q")
            _save(root, tarball)
        finally:
            remove(work)
        return tarball


def _grown_tarball(name, base, key, packages):
    """The root of tarball `base` + `packages` (cached as NAME-<key>)."""
    key = hashlib.sha256((key + " ".join(packages)).encode()).hexdigest()[:12]
    tarball = os.path.join(CACHE, "%s-%s-%s.root.tar" % (SUITE, name, key))
    with _cache_lock():
        if os.path.exists(tarball):
            return tarball
        root = _scratch()
        try:
            unpack(base, root)
            in_chroot(
                root,
                "apt-get update -q && apt-get install -y -q --no-install-recommends %s && apt-get clean"
                % " ".join(packages),
                timeout=900,
            )
            _save(root, tarball)
        finally:
            remove(root)
        return tarball


def systemd_tarball(sources):
    """The clean root + systemd and the package's dependencies (cached)."""
    # the packages are part of the key: a new dependency makes a new tarball
    return _grown_tarball("systemd", base_tarball(sources), cache_key(sources), SYSTEMD_PACKAGES)


def podman_tarball(sources):
    """The systemd root + Podman (cached)."""
    return _grown_tarball("podman", systemd_tarball(sources), cache_key(sources) + " ".join(SYSTEMD_PACKAGES),
                          PODMAN_PACKAGES)


def new_root(tarball):
    root = _scratch()
    unpack(tarball, root)
    return root


# ------------------------------------------------------------ file listings

# Never part of a listing: kernel file systems (mount points, empty on
# disk) and apt's .deb cache (a bind mount of APT_ARCHIVES).
SKIP = ("proc", "dev", "sys", "var/cache/apt/archives")


def listing(root):
    """{relative path: (kind, mode, uid, gid, content)}: every file, dir and
    link in the chroot; content is a sha256 for files, the target for links."""
    result = {}
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top
        dirs[:] = [d for d in dirs if os.path.join(rel_top, d) not in SKIP]
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = os.path.join(rel_top, name)
            st = os.lstat(path)
            meta = (st.st_mode, st.st_uid, st.st_gid)
            if os.path.islink(path):
                result[rel] = ("link",) + meta + (os.readlink(path),)
            elif os.path.isdir(path):
                result[rel] = ("dir",) + meta + ("",)
            elif os.path.isfile(path):
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                result[rel] = ("file",) + meta + (digest.hexdigest(),)
            else:
                result[rel] = ("other",) + meta + ("",)
    return result


def listing_diff(before, after, allowed):
    """Paths added, removed or changed between two listings, except those
    matching a glob in `allowed` (fnmatch: `*` also matches `/`)."""
    import fnmatch

    def ok(path):
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in allowed)

    added = sorted(p for p in after if p not in before and not ok(p))
    removed = sorted(p for p in before if p not in after and not ok(p))
    changed = sorted(p for p in before if p in after and before[p] != after[p] and not ok(p))
    return added, removed, changed
