"""Least privilege: the account an agent runs as once pmcd has started it, and the state
directory that account writes.

pmcd starts every agent as root.  An agent whose sources need no privilege (sysfs counters,
Slurm's commands, files users or pmie write) becomes the pcp user (PCP_USER in pcp.conf)
with PCP's own pmSetProcessIdentity, as PCP's python agents do, before it reads any source
and before it starts its refresh thread or process, which then run as that user too.  Then
a flaw in a parser fed by users (job names, run directories, alarm state) is a flaw in an
unprivileged process, and Slurm's PrivateData applies to what hpcjob serves.

What needs root happens first, in the agent's main: libpcp_pmda opens the agent's log, and
the agent's state directory is handed to the account here.  No PCP import: the glue passes
PCP's identity call in.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass

from .agent import Agent

log = logging.getLogger("pmdas")

ROOT = "root"


class PrivilegeError(Exception):
    """The agent could not take the account it should run as; it must not run on as root."""


@dataclass(frozen=True)
class Account:
    """Who an agent runs as, and why (the agent logs it at start)."""

    name: str
    uid: int
    gid: int
    why: str


def chosen_account(agent: Agent, pcp_user: str) -> Account:
    """The account ``agent`` runs as: its ``user`` setting if given, else root when the agent
    says it needs root (``Agent.needs_root``), else ``pcp_user``.  An unknown ``user`` falls
    back to the agent's own choice (logged): never to root for an agent that needs no root."""
    configured = str(agent.config.get("user") or "")
    if configured:
        try:
            entry = pwd.getpwnam(configured)
        except KeyError:
            log.error("%s: user '%s' (the 'user' setting) does not exist; using the agent's "
                      "own choice", agent.name, configured)
        else:
            return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, "the 'user' setting")
    reason = agent.needs_root()
    name, why = (ROOT, reason) if reason else (pcp_user, "its sources need no privilege")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"{agent.name}: account '{name}' does not exist") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, why)


def hand_over_state_dir(path: str, account: Account) -> None:
    """Make ``path`` a directory (0755) that ``account`` owns, with the files in it its own;
    run as root, before the drop.

    Whoever owned the directory before may have planted things in it: a symlink or a hard
    link to /etc/shadow that a plain chown would hand over, a FIFO that a read would hang
    on.  So the directory is opened without following a symlink and changed through that
    descriptor only; it is made root's first, so nobody else can add or swap entries while
    they are handed over; a file is handed over only if it is a regular file with a single
    link (checked without following a symlink, then again on the open file); anything else
    is removed when the new owner is root (root must not read what another account planted)
    and left alone otherwise (the unprivileged agent cannot be harmed by it).  The directory
    above must be root's alone, or a swap of the path itself could not be ruled out.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    _check_root_only(parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o755)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise PrivilegeError(f"state directory {path} cannot be used: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (account.uid, account.gid, 0o755):
            return
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o755)
        for name in os.listdir(fd):
            _hand_over_entry(fd, name, account)
        os.fchown(fd, account.uid, account.gid)
    finally:
        os.close(fd)


def _hand_over_entry(directory: int, name: str, account: Account) -> None:
    entry = os.lstat(name, dir_fd=directory)
    if stat.S_ISREG(entry.st_mode) and entry.st_nlink == 1:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        fd = os.open(name, flags, dir_fd=directory)
        try:
            opened = os.fstat(fd)
            if (opened.st_ino, opened.st_dev, opened.st_nlink) == (entry.st_ino, entry.st_dev, 1):
                os.fchown(fd, account.uid, account.gid)
                os.fchmod(fd, 0o644)
                return
        finally:
            os.close(fd)
    if account.uid == 0 and not stat.S_ISDIR(entry.st_mode):
        log.warning("state directory: removing %s (%s), left by another account", name,
                    stat.filemode(entry.st_mode))
        os.unlink(name, dir_fd=directory)


def _check_root_only(directory: str) -> None:
    st = os.stat(directory)
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PrivilegeError(f"{directory} is not root's alone (owner uid {st.st_uid}, mode "
                             f"{stat.filemode(st.st_mode)}): no state directory below it is handed "
                             f"to another account")


def become(account: Account, set_identity: Callable[[str], object]) -> None:
    """Take ``account`` for good (real, effective and saved ids, groups) with
    ``set_identity`` (PCP's pmSetProcessIdentity), and check that it took: an agent that
    should have dropped root and did not must not run on."""
    if account.uid == 0 or os.geteuid() != 0:
        if os.geteuid() not in (0, account.uid):
            log.warning("started as uid %d, not root: cannot become %s", os.geteuid(), account.name)
        return
    set_identity(account.name)
    if os.getresuid() != (account.uid,) * 3 or os.getresgid() != (account.gid,) * 3:
        raise PrivilegeError(f"could not become {account.name}: uids {os.getresuid()}, "
                             f"gids {os.getresgid()}")
    if 0 in os.getgroups():
        raise PrivilegeError(f"still in group root after becoming {account.name}")
