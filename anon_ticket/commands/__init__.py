"""The command line: `python -m anon_ticket [COMMAND]` (`cli`), the operator's token commands
(`tokens`), the `--env-file` reader (`envfile`) and the one client of the running daemon's internal
API (`internal_client`).
"""
