"""A live io_uring probe through raw syscalls (ctypes), so it needs no liburing.

It creates real rings as the calling user, under the calling process's seccomp filter and
resource limits: exactly what ringcast will meet when started the same way. Syscall
numbers 425-427 are shared by every Linux architecture except alpha.
"""

import ctypes
import errno
import mmap
import os

SYS_IO_URING_SETUP, SYS_IO_URING_REGISTER = 425, 427
IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_DEFER_TASKRUN = 1 << 12, 1 << 13
IORING_REGISTER_PROBE, IORING_REGISTER_PBUF_RING = 8, 22
IO_URING_OP_SUPPORTED = 1
# Opcodes ringcast's reactor uses, with the kernel that added them.
REQUIRED_OPS = {"ACCEPT": 13, "SEND": 26, "RECV": 27, "MSG_RING": 40}  # 5.5/5.6/5.6/5.18
OPTIONAL_OPS = {"SEND_ZC": 47}  # 6.0


class IoUringParams(ctypes.Structure):
    _fields_ = [("sq_entries", ctypes.c_uint32), ("cq_entries", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("sq_thread_cpu", ctypes.c_uint32),
                ("sq_thread_idle", ctypes.c_uint32), ("features", ctypes.c_uint32),
                ("wq_fd", ctypes.c_uint32), ("resv", ctypes.c_uint32 * 3),
                ("sq_off", ctypes.c_uint8 * 40), ("cq_off", ctypes.c_uint8 * 40)]


class ProbeOp(ctypes.Structure):
    _fields_ = [("op", ctypes.c_uint8), ("resv", ctypes.c_uint8),
                ("flags", ctypes.c_uint16), ("resv2", ctypes.c_uint32)]


class Probe(ctypes.Structure):
    _fields_ = [("last_op", ctypes.c_uint8), ("ops_len", ctypes.c_uint8),
                ("resv", ctypes.c_uint16), ("resv2", ctypes.c_uint32 * 3),
                ("ops", ProbeOp * 256)]


class BufReg(ctypes.Structure):
    _fields_ = [("ring_addr", ctypes.c_uint64), ("ring_entries", ctypes.c_uint32),
                ("bgid", ctypes.c_uint16), ("flags", ctypes.c_uint16),
                ("resv", ctypes.c_uint64 * 3)]


def probe_io_uring():
    """Creates real rings. Returns a dict: setup errno, flags accepted, ops, pbuf ring."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def setup(flags):
        params = IoUringParams(flags=flags)
        fd = libc.syscall(ctypes.c_long(SYS_IO_URING_SETUP), ctypes.c_uint(8),
                          ctypes.byref(params))
        return fd, (ctypes.get_errno() if fd < 0 else 0)

    result = {"errno": 0, "defer_taskrun": False, "ops": {}, "pbuf_ring": None}
    fd, err = setup(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)
    if fd >= 0:
        result["defer_taskrun"] = True
    elif err == errno.EINVAL:  # Flags unknown to this kernel; plain rings may still work.
        fd, err = setup(0)
    result["errno"] = err
    if fd < 0:
        return result
    try:
        probe = Probe()
        if libc.syscall(ctypes.c_long(SYS_IO_URING_REGISTER), ctypes.c_uint(fd),
                        ctypes.c_uint(IORING_REGISTER_PROBE), ctypes.byref(probe),
                        ctypes.c_uint(256)) == 0:
            supported = {probe.ops[i].op for i in range(probe.ops_len)
                         if probe.ops[i].flags & IO_URING_OP_SUPPORTED}
            for name, op in {**REQUIRED_OPS, **OPTIONAL_OPS}.items():
                result["ops"][name] = op in supported
        result["pbuf_ring"] = probe_pbuf_ring(libc, fd)
    finally:
        os.close(fd)
    return result


def probe_pbuf_ring(libc, fd):
    """Registers an 8-entry provided-buffer ring (5.19+) in page-aligned memory."""
    area = mmap.mmap(-1, mmap.PAGESIZE)
    anchor = ctypes.c_char.from_buffer(area)
    try:
        reg = BufReg(ring_addr=ctypes.addressof(anchor), ring_entries=8, bgid=0)
        rc = libc.syscall(ctypes.c_long(SYS_IO_URING_REGISTER), ctypes.c_uint(fd),
                          ctypes.c_uint(IORING_REGISTER_PBUF_RING), ctypes.byref(reg),
                          ctypes.c_uint(1))
        return rc == 0 or ctypes.get_errno()
    finally:
        del anchor
        area.close()

