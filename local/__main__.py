"""``python -m local demo`` (make demo) and ``python -m local serve`` (make local)."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(add_completion=False, help="The hub's embedded local stack.")


@app.command()
def demo(
    month_end_workers: int | None = typer.Option(
        None,
        help="Workers per legal entity in the month end (about 30 entries each; default 20); 0 skips it.",
    ),
    workforce_workers: int | None = typer.Option(
        None, help="Workers hired in the HCM for the workforce step (default 200); 0 skips it."
    ),
) -> None:
    """Start the local stack, run the closed-won scenario, the month end and the workforce step; non-zero exit
    if anything is unaccounted for or was created twice."""
    from local.demo import MONTH_END_WORKERS, main
    from local.workforce import WORKERS

    raise typer.Exit(
        main(
            MONTH_END_WORKERS if month_end_workers is None else month_end_workers,
            WORKERS if workforce_workers is None else workforce_workers,
        )
    )


@app.command()
def serve() -> None:
    """Start the local stack and keep it running until interrupted (Ctrl-C)."""
    from local.serve import main

    raise typer.Exit(main())


if __name__ == "__main__":
    sys.exit(app())
