"""``python -m local demo`` (make demo) and ``python -m local serve`` (make local)."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(add_completion=False, help="The hub's embedded local stack.")


@app.command()
def demo() -> None:
    """Start the local stack and run the closed-won scenario; non-zero exit if a deal is unaccounted for."""
    from local.demo import main

    raise typer.Exit(main())


@app.command()
def serve() -> None:
    """Start the local stack and keep it running until interrupted (Ctrl-C)."""
    from local.serve import main

    raise typer.Exit(main())


if __name__ == "__main__":
    sys.exit(app())
