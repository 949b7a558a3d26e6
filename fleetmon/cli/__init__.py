"""The command line (I/O edge): options, the process around a run, one module per subcommand.

main.py      entry point: parse, dispatch, map errors to exit codes
options.py   the argparse parser (standard library only: `--help` stays fast)
runtime.py   signals, the event loop, progress line
common.py    rule files, the report, writing outputs
run.py report.py inventory.py rules.py simulate.py   the subcommands
"""
