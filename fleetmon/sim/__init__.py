"""The fleet simulator (edge): one asyncssh server playing N hosts built from real captures.

`hosts` draws the fleet, `render` and `answer` turn a host into probe output, `server`
serves it; `fleetmon.cli.simulate` is the command line.
"""
