"""A private mount namespace for `fiswatch lab exec`: files bound over /etc/resolv.conf and friends.

The calling process itself moves into a new mount namespace (as root), or into a new user
namespace plus mount namespace that maps its own uid and gid (when not root and the kernel
allows unprivileged user namespaces). Nothing outside changes: the bind mounts exist only
in that namespace, which the kernel removes when its last process exits. The files bound
are unlinked right after the bind, so nothing is left in the file system either.

The caller must be single-threaded (unshare(2) refuses CLONE_NEWNS otherwise).
"""
import ctypes
import errno
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_USERNS_HINT = {
    errno.EPERM: "disabled: sysctl kernel.unprivileged_userns_clone, or a security policy",
    errno.EACCES: "denied by a security policy (AppArmor/SELinux)",
    errno.EINVAL: "this process has threads",
    errno.ENOSYS: "not built into this kernel",
    errno.EUSERS: "nested too deeply",
}


def _sysctl(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def userns_why(err: int) -> str:
    """The real errno of unshare(CLONE_NEWUSER) and what it means here (the limit only when it is the limit)."""
    head = "%s, %s" % (errno.errorcode.get(err, "errno %d" % err), os.strerror(err))
    if err == errno.ENOSPC:
        limit = _sysctl("/proc/sys/user/max_user_namespaces")
        hint = ("sysctl user.max_user_namespaces is 0" if limit == "0" else
                "a limit is reached: user.max_user_namespaces is %s, or the nesting depth (32)" % limit)
    else:
        hint = _USERNS_HINT.get(err, "")
    return head + (": " + hint if hint else "")


class NamespaceError(RuntimeError):
    """The namespace or a bind mount could not be made; str() is one line."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)  # this process's libc (find_library would spawn ldconfig)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _unshare(libc: ctypes.CDLL, flags: int) -> int:
    """0 or the errno of unshare(flags)."""
    if libc.unshare(flags) == 0:
        return 0
    return ctypes.get_errno()


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _mount(libc: ctypes.CDLL, source: Optional[str], target: str, flags: int) -> int:
    src = source.encode() if source is not None else None
    if libc.mount(src, target.encode(), None, flags, None) == 0:
        return 0
    return ctypes.get_errno()


def enter(binds: Dict[str, str]) -> str:
    """Move this process into a private mount namespace with `binds` (target -> text) bound.

    Returns how: 'mount namespace' (root) or 'user+mount namespace'. NamespaceError if the
    kernel refuses; the message says what is missing.
    """
    if not sys.platform.startswith("linux"):
        raise NamespaceError("`lab exec` needs Linux (mount namespaces); on %s use `fiswatch watch --lab` "
                             "or a client's own --nameserver option" % sys.platform)
    libc = _libc()
    how = "mount namespace"
    first = _unshare(libc, CLONE_NEWNS) if os.geteuid() == 0 else errno.EPERM
    if first:
        uid, gid = os.geteuid(), os.getegid()
        second = _unshare(libc, CLONE_NEWUSER | CLONE_NEWNS)
        if second:
            raise NamespaceError(
                "cannot make a private mount namespace: %s, and user namespaces are not available (%s)"
                % ("not root" if os.geteuid() else "root but refused (%s)" % os.strerror(first),
                   userns_why(second)))
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", "%d %d 1\n" % (uid, uid))
            _write("/proc/self/gid_map", "%d %d 1\n" % (gid, gid))
        except OSError as exc:
            raise NamespaceError("cannot map the user in a new user namespace: %s" % (exc.strerror or exc))
        how = "user+mount namespace"
    err = _mount(libc, None, "/", MS_REC | MS_PRIVATE)
    if err:
        raise NamespaceError("cannot make mounts private in the new namespace: %s" % os.strerror(err))
    folder, staged = _stage(binds)
    try:
        for target, source in staged:
            err = _mount(libc, source, target, MS_BIND)
            if err:
                raise NamespaceError("cannot bind a file over %s: %s" % (target, os.strerror(err)))
    finally:
        _unstage(folder, staged)
    return how


def _stage(binds: Dict[str, str]) -> Tuple[str, List[Tuple[str, str]]]:
    """Write each text to a file in a fresh temp folder; (folder, [(target, file)])."""
    folder = tempfile.mkdtemp(prefix="fiswatch-exec-")
    staged = []
    for n, (target, text) in enumerate(sorted(binds.items())):
        path = os.path.join(folder, "%d-%s" % (n, os.path.basename(target)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        staged.append((target, path))
    return folder, staged


def _unstage(folder: str, staged: Sequence[Tuple[str, str]]) -> None:
    """Unlink the staged files (a bind mount keeps its inode alive) and their folder."""
    for _, path in staged:
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        os.rmdir(folder)
    except OSError:
        pass
