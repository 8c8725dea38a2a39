#!/usr/bin/env python3
# hostile-archive.py CASE OUT.tar DB UPLOADS: an uncompressed .ferry tar
# for t2960, wrong in the way CASE says ("good" is well formed).
import hashlib
import io
import sys
import tarfile

case, out, db, up = sys.argv[1:5]
members = [('f', 'database.sqlite', open(db, 'rb').read()), ('d', 'paths/0', b''),
           ('d', 'paths/0/sub', b''), ('f', 'paths/0/sub/file', b'evil')]
if case == 'absolute':
    members.append(('f', '/etc/evil', b'x'))
if case == 'dotdot':
    members.append(('f', 'paths/0/../../evil', b'x'))
if case == 'unlisted':
    members.append(('f', 'paths/0/unlisted', b'x'))
special = case if case in ('symlink', 'hardlink', 'fifo', 'device') else None


def manifest():
    t = '[archive]\nformat = 1\nengine = sqlite\nschema_version = 1\n'
    t += 'ferry_version = test\ncreated_at = now\npath.0 = %s\n[members]\n' % up
    for kind, name, data in members:
        if name == 'paths/0/unlisted' or name.startswith('/') or '..' in name:
            continue
        size = len(data)
        if case == 'larger' and name == 'paths/0/sub/file':
            size = 2
        sha = hashlib.sha256(data).hexdigest() if kind == 'f' else '-'
        if case == 'badsum' and name == 'paths/0/sub/file':
            sha = '0' * 64
        mode = '0644' if kind == 'f' else '0755'
        t += '%s %d %s 0 %s %s\n' % (kind, size, mode, sha, name)
    if special:
        t += 'f 0 0644 0 %s paths/0/%s\n' % (hashlib.sha256(b'').hexdigest(), special)
    return t.encode()


buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
    def add(name, data, kind=tarfile.REGTYPE, link=''):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.linkname = link
        ti.size = len(data) if kind == tarfile.REGTYPE else 0
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add('manifest.ini', manifest())
    for kind, name, data in members:
        add(name, data, tarfile.DIRTYPE if kind == 'd' else tarfile.REGTYPE)
    kinds = {'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
             'fifo': tarfile.FIFOTYPE, 'device': tarfile.CHRTYPE}
    if special:
        add('paths/0/' + special, b'', kinds[special], '/etc/passwd')
open(out, 'wb').write(buf.getvalue())
