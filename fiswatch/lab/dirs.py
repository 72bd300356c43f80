"""The lab dir as a user meets it: can it be made and written, and whose is it."""
import os

from fiswatch.lab import layout as L


class DirProblem(Exception):
    """The lab dir cannot be used; str() is one line saying what to do."""


def owner(path: str) -> str:
    """'user NAME' (or 'uid N') owning `path`; 'another user' when even that cannot be known."""
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "another user"
    try:
        return "user %s" % pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid


def other_user_message(lab_dir: str) -> str:
    sock = os.path.join(lab_dir, L.CONTROL_SOCKET)
    return ("the lab in %s belongs to %s: permission denied on its control socket; run fiswatch as that user, "
            "or start your own lab with another --dir" % (lab_dir, owner(sock if os.path.lexists(sock) else lab_dir)))


def usable_dir(lab_dir: str) -> None:
    """Create the lab dir (mode 0700) if needed and check the lab can write in it (a read-only mount,
    another user's dir): DirProblem otherwise, and a dir this call created is removed again."""
    made = False
    if not os.path.isdir(lab_dir):
        try:
            os.makedirs(lab_dir, mode=0o700)
            made = True
        except FileExistsError:
            if not os.path.isdir(lab_dir):
                raise DirProblem("%s exists and is not a directory: choose another --dir" % lab_dir)
        except OSError as exc:
            raise DirProblem("cannot create the lab dir %s (%s): choose another --dir" % (lab_dir, exc.strerror))
    probe = os.path.join(lab_dir, ".fiswatch-write-test-%d" % os.getpid())
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if made:
            try:
                os.rmdir(lab_dir)
            except OSError:
                pass
        raise DirProblem("cannot write in the lab dir %s (%s; it belongs to %s): choose another --dir"
                         % (lab_dir, exc.strerror or exc, owner(lab_dir)))
    os.close(fd)
    os.unlink(probe)
