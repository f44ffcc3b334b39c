"""`python -m governance.cli`: the same as `govern`."""

from governance.cli import main

main()
