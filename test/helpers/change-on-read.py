# change-on-read.py KIND FILE READY: a writer that changes FILE during every read of it, for the
# tests of files changing while they are copied. Each read of FILE by another process is held
# (fanotify FAN_ACCESS_PERM) until FILE was changed once more, so every copy attempt sees a
# change, however the machine is loaded. KIND: grows | shrinks and regrows | is rewritten in
# place | gets an attribute (user.late, set during the first read only). Creates READY once the
# mark is set. Needs CAP_SYS_ADMIN (root).
import ctypes, os, struct, sys

kind, path, ready = sys.argv[1], sys.argv[2], sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
FAN_CLASS_CONTENT, FAN_CLOEXEC, FAN_MARK_ADD, FAN_ACCESS_PERM, FAN_ALLOW, AT_FDCWD = 0x04, 0x01, 0x01, 0x00020000, 0x01, -100

fd = libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, os.O_RDONLY)
if fd < 0:
    sys.exit('fanotify_init: ' + os.strerror(ctypes.get_errno()))
if libc.fanotify_mark(fd, FAN_MARK_ADD, FAN_ACCESS_PERM, AT_FDCWD, path.encode()) < 0:
    sys.exit('fanotify_mark: ' + os.strerror(ctypes.get_errno()))
open(ready, 'w').close()
size = os.stat(path).st_size
n = 0
while True:
    buf = os.read(fd, 4096)
    off = 0
    while off < len(buf):
        # struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid
        event_len, _vers, _res, _mlen, _mask, efd, pid = struct.unpack_from('=IBBHQii', buf, off)
        off += event_len
        if pid != os.getpid() and kind == 'gets an attribute':
            n += 1
            if n == 1:
                os.setxattr(path, 'user.late', b'set while the file was read')
        elif pid != os.getpid():
            n += 1
            w = os.open(path, os.O_WRONLY)
            if kind == 'grows':
                os.pwrite(w, b'g' * 4096, os.fstat(w).st_size)
            elif kind == 'shrinks and regrows':
                os.ftruncate(w, size - (1 << 20))
                os.ftruncate(w, size)
            else:
                os.pwrite(w, bytes([n & 0xff]) * 4096, 0)
            os.close(w)
        os.write(fd, struct.pack('=iI', efd, FAN_ALLOW))
        if efd >= 0:
            os.close(efd)
