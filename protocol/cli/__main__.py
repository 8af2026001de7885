"""``python -m protocol.cli``: the `pinpoint` command."""

from protocol.cli.main import main

main()
