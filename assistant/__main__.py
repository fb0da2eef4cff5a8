"""``python -m assistant`` (and the ``quillmate`` command) run the quillmate CLI."""

import sys

from assistant import interrupts

interrupts.defer()  # before the CLI's imports, so an early Ctrl+C still gives a filter's selection back


def run() -> None:
    """Console-script entry point: Ctrl+C is held before the CLI is imported, and answered at any moment."""
    interrupts.defer()
    from assistant.cli import main

    try:
        main()
    except KeyboardInterrupt:  # one that came while the CLI was already closing: still the documented exit
        sys.stderr.write("quillmate: interrupted.\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
