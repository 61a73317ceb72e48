"""`python -m mandate` is the `mandate` command."""

from mandate.cli import main

main()
