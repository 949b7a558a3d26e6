"""Collect stage (I/O): the probe script and the transports that run it on each host.

probe.py    the POSIX sh script for a host (pure text building)
base.py     options, host failures, capped output reading shared by the transports
ssh.py      asyncssh: one connection, one exec channel per host
hostkeys.py the user and global known_hosts files, as OpenSSH checks them
local.py    `ansible_connection: local`: the probe through a local sh
runner.py   every host concurrently, the transport chosen by the TRANSPORTS registry
"""
