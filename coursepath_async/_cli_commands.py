"""The CLI's subcommands, registered in ``--help`` order; each lives in its own module."""

from __future__ import annotations

from ._cli_bulk import add_import_command, add_sync_command
from ._cli_export import add_export_command
from ._cli_sandbox import add_demo_command, add_sandbox_command
from ._cli_support import Subparsers, connection_options
from ._doctor._command import add_doctor_command
from ._webhooks._command import add_webhooks_command


def add_commands(commands: Subparsers) -> None:
    """Register every subcommand on the top-level parser, with the shared connection flags."""
    add_import_command(commands, connection_options)
    add_sync_command(commands, connection_options)
    add_export_command(commands, connection_options)
    add_sandbox_command(commands)
    add_demo_command(commands)
    add_webhooks_command(commands, connection_options)
    add_doctor_command(commands, connection_options)
