#!/usr/bin/env python3
"""make-seeds.py: writes the seed corpora of tests/fuzz/corpus/ (run once;
the files are kept in the tree and this script documents where they came
from: the shapes vmrp writes and QEMU 7.2 / qemu-ga 7.2 replies recorded for
the unit tests).

SPDX-License-Identifier: LGPL-2.1-or-later
"""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, '..', 'corpus')
SEP = '\n----\n'
SYNC_ID = 1791095846   # the first guest-sync-delimited id with g_random_set_seed(1)
UUID = '6f1c9f3e-2a51-4d4c-9a53-0b1e8e0c0d11'

def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

def point(pid, kind='full', parent=None, disks=None, state='Succeeded'):
    return json.dumps({
        'format': 1, 'id': pid,
        'domain': {'name': 'vm1', 'uuid': UUID},
        'created': '2024-01-02T03:04:05Z', 'state': state, 'kind': kind,
        'parent': parent, 'checkpoint': 'vmrp-' + pid, 'message': None,
        'consistency': {'requested': 'application', 'achieved': 'crash',
                        'fallback_reason': 'guest agent is not connected',
                        'freeze_ms': 17},
        'duration_ms': 1234,
        'disks': disks if disks is not None else [
            {'target': 'vda', 'source': '/var/lib/libvirt/images/vm1.qcow2',
             'format': 'qcow2', 'image': 'vda.qcow2', 'backing': None,
             'excluded': False, 'size': 1 << 30, 'bytes_total': 3 << 20,
             'bytes_done': 1 << 20, 'percent': 33},
            {'target': 'vdb', 'source': '/dev/vg/data', 'format': 'raw',
             'image': None, 'backing': None, 'excluded': True, 'size': 0,
             'bytes_total': 0, 'bytes_done': 0, 'percent': 0}],
    }, indent=2) + '\n'

P1, P2 = '20240102-030405-abcdef', '20240102-040506-012345'
full = point(P1)
incr = point(P2, kind='incremental', parent=P1, state='Creating', disks=[
    {'target': 'vda', 'source': '/var/lib/libvirt/images/vm1.qcow2', 'format': 'qcow2',
     'image': 'vda.qcow2', 'backing': '../' + P1 + '/vda.qcow2', 'excluded': False,
     'size': 1 << 30, 'bytes_total': 65536, 'bytes_done': 65536, 'percent': 100}])
put('point', 'full.json', full)
put('point', 'incremental.json', incr)
put('point', 'minimal.json', json.dumps({
    'format': 1, 'id': P1, 'domain': {'name': 'x', 'uuid': UUID}, 'created': '',
    'state': 'Failed', 'kind': 'full', 'consistency': {'requested': 'crash',
    'achieved': 'crash'}, 'disks': []}))

repo = json.dumps({'format': 1, 'id': '0d8a7c55-13c4-4b0e-8e2f-5a1d2c3b4e5f',
                   'created': '2024-01-02T03:04:05Z'}, indent=2) + '\n'
coll = json.dumps({'format': 1, 'name': 'vm1', 'uuid': UUID,
                   'created': '2024-01-02T03:04:05Z'}, indent=2) + '\n'
coll_b = json.dumps({'format': 1, 'name': 'vm2', 'uuid': '0d8a7c55-13c4-4b0e-8e2f-5a1d2c3b4e5f',
                     'created': '2024-01-02T03:04:05Z'}) + '\n'
put('repo', 'whole.txt', SEP.join([repo, coll, full, incr, coll_b, P1]))
put('repo', 'no-points.txt', SEP.join([repo, coll]))
put('repo', 'extra-folder.txt', SEP.join([repo, coll, full, incr, coll_b, '20991231-235959-ffffff']))
put('repo', 'empty-repo.txt', repo)

xml = open(os.path.join(here, 'domain.xml')).read()
put('domxml', 'testvm.xml', xml)
put('domxml', 'minimal.xml', "<domain type='qemu'><name>a</name><devices><disk type='file'>"
    "<source file='/a.qcow2'/><target dev='vda'/></disk></devices></domain>")
put('domxml', 'chars.xml', "<domain><name>a&amp;b</name><devices><serial type='file'>"
    "<source path='/var/log/x.log'/><log file='/var/log/y.log'/></serial><disk type='block' "
    "device='lun'><driver name='qemu'/><source dev='/dev/sdb'/><backingStore/><mirror/>"
    "<target dev='sda'/></disk></devices></domain>")

greeting = ('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, '
            '"package": "Debian 1:7.2+dfsg-7+deb12u5"}, "capabilities": ["oob"]}}')
named_nodes = open(os.path.join(here, 'named-nodes.json')).read().strip()
replies = {
    'return-empty.json': '{"return": {}}',
    'status.json': '{"return": {"status": "paused", "singlestep": false, "running": false}}',
    'error.json': '{"error": {"class": "GenericError", "desc": "Command guest-fsfreeze-freeze has been disabled"}, "id": 3}',
    'not-found.json': '{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}}',
    'exec-status.json': '{"return": {"exitcode": 0, "out-data": "aGVsbG8Kd29ybGQK", "exited": true, "out-truncated": false}}',
    'file-read.json': '{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": false}}',
    'fsinfo.json': '{"return": [{"name": "vda", "total-bytes": 60392448, "mountpoint": "/", "disk": [{"serial": "vmrp-vda", "bus-type": "virtio", "bus": 0, "unit": 0, "pci-controller": {"bus": 4, "slot": 0, "domain": 0, "function": 0}, "dev": "/dev/vda", "target": 0}], "used-bytes": 3563520, "type": "ext4"}]}',
    'greeting.json': greeting,
    'named-nodes.json': named_nodes,
    'event.json': '{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "STOP"}',
}
for name, text in replies.items():
    put('qmp', name, text)

def stream(*msgs):
    return '\n'.join(msgs) + '\n'
sync = '\xff{"return": %d}' % SYNC_ID
agent = stream(sync, '{"return": {}}', '{"return": "thawed"}', '{"return": 2}', '{"return": 1}',
               replies['fsinfo.json'], '{"return": 1000}',
               '{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": true}}', '{"return": {}}',
               '{"return": {"pid": 1234}}',
               '{"return": {"exitcode": 0, "out-data": "aGVsbG8K", "exited": true}}',
               '{"return": 2}')
put('qmp-socket', 'agent.bin', b'\x00' + agent.encode('latin-1'))
put('qmp-socket', 'agent-junk-before-sync.bin',
    b'\x00' + ('{"return": 17}\n' + sync + '\n' + '{"error": {"class": "GenericError", '
               '"desc": "Command guest-ping has been disabled"}}\n').encode('latin-1'))
put('qmp-socket', 'monitor.bin', b'\x01' + stream(
    greeting, '{"return": {}}',
    '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}',
    replies['status.json'], named_nodes, '{"return": {"status": "running", "running": true}}').encode())
put('qmp-socket', 'monitor-split.bin', b'\x01' + (greeting + '{"return"').encode())

names = ['vm1', 'my-vm_2.test+x', '20240102-030405-abcdef', 'vda', 'vda,vdb, vda ,sdc',
         'application', 'filesystem', 'crash', '.hidden', '-x', '../etc', 'a' * 65, '']
put('names', 'lines.txt', '\n'.join(names))
put('names', 'list.txt', 'vda,vdb')
