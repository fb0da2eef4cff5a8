"""``python -m assistant`` (and the ``quillmate`` command) run the quillmate CLI."""

from assistant import interrupts

interrupts.defer()  # before the CLI's imports, so an early Ctrl+C still gives a filter's selection back


def run() -> None:
    """Console-script entry point: Ctrl+C is held before the CLI is imported."""
    interrupts.defer()
    from assistant.cli import main

    main()


if __name__ == "__main__":
    run()
