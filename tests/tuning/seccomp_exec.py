#!/usr/bin/python3
"""seccomp_exec.py ERRNO CMD...: run CMD with io_uring_setup/enter/register failing ERRNO.

Installs a classic-BPF seccomp filter (what Docker's default profile and systemd's
SystemCallFilter= amount to for io_uring) and execs CMD, so tests can check that the
audit names a seccomp block as the cause. Exits 77 (CTest: skipped) when the kernel
refuses the filter.
"""

import ctypes
import errno
import os
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
IO_URING_SYSCALLS = (425, 426, 427)  # setup, enter, register: same on every arch but alpha


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def install(err):
    # A = seccomp_data.nr; for each io_uring syscall: if A == nr return ERRNO(err).
    prog = [SockFilter(BPF_LD_W_ABS, 0, 0, 0)]
    for nr in IO_URING_SYSCALLS:
        prog += [SockFilter(BPF_JEQ_K, 0, 1, nr),
                 SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | err)]
    prog.append(SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    array = (SockFilter * len(prog))(*prog)
    fprog = SockFprog(len(prog), ctypes.cast(array, ctypes.POINTER(SockFilter)))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def main():
    err = getattr(errno, sys.argv[1])
    if not install(err):
        print(f"seccomp_exec: cannot install a seccomp filter: "
              f"{os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 77
    os.execvp(sys.argv[2], sys.argv[2:])
    return 1


if __name__ == "__main__":
    sys.exit(main())
