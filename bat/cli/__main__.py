"""``python -m bat.cli``: what the ``deepspeed --module bat.cli`` launcher runs on every rank."""

from bat.cli import main

main()
